"""Model FLOPs counted from the operators a training step runs (not estimated from parameter counts),
and the bf16 peak of the devices mer is benchmarked on.

The count uses ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions, attention; one
multiply-add = 2 FLOPs) over one forward and one backward pass. It runs on the ``meta`` device when
asked, so counting the base model costs no compute and no memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

# Dense bf16 tensor-core peak in FLOP/s (vendor datasheets; sparsity figures are twice these).
BF16_PEAK: dict[str, float] = {
    "H100 PCIe": 756e12,
    "H100": 989.4e12,  # SXM5 / HBM3 parts
    "H200": 989.4e12,
    "A100": 312e12,
    "RTX A6000": 154.8e12,  # the paper's GPUs
    "L40S": 362.05e12,
}


def bf16_peak(device_name: str) -> float | None:
    """Dense bf16 peak FLOP/s of a device by (a substring of) its name; None when unknown (CPUs)."""
    for key in sorted(BF16_PEAK, key=len, reverse=True):  # "H100 PCIe" before "H100"
        if all(part in device_name for part in key.split()):
            return BF16_PEAK[key]
    return None


def _conv_backward_flops(
    grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed, *args, **kwargs
) -> int:
    """Backward of a convolution: one forward-sized convolution for the input gradient and one for
    the weight gradient, each only when asked for.

    torch's own formula (2.x) builds the weight gradient as a dense convolution over the transposed
    shapes and ignores ``groups``: for the depthwise convolutions of the local MHRA and the dynamic
    positional encoding it counts ~``channels``× too much (1.57× the whole backward of the base
    model). The forward count is right for grouped weights (``w_shape[1]`` is per group), so it is
    reused here.
    """
    output_mask = args[2] if len(args) > 2 else kwargs.get("output_mask", (True, True, True))
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


_CUSTOM = {torch.ops.aten.convolution_backward: _conv_backward_flops}


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one training step of a batch.

    Attributes:
        forward: Forward-pass FLOPs.
        backward: Backward-pass FLOPs.
        batch: Clips in the batch.
    """

    forward: int
    backward: int
    batch: int

    @property
    def total(self) -> int:
        return self.forward + self.backward

    @property
    def per_clip(self) -> float:
        return self.total / self.batch


def count_step_flops(
    model: nn.Module, inputs: torch.Tensor, loss_of: Callable[[object], torch.Tensor] | None = None
) -> StepFlops:
    """Count the FLOPs of ``loss_of(model(inputs)).backward()``.

    Args:
        model: The network (its parameters on the device of ``inputs``; ``meta`` works).
        inputs: One batch, first dimension the batch.
        loss_of: Output → scalar; default: the sum of every floating tensor in the output.

    Returns:
        Forward and backward FLOPs of the batch.
    """

    def default_loss(out: object) -> torch.Tensor:
        values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else [out]
        return sum(v.float().sum() for v in values if torch.is_tensor(v) and v.is_floating_point())

    loss_of = loss_of or default_loss
    with FlopCounterMode(display=False, custom_mapping=_CUSTOM) as fwd:
        loss = loss_of(model(inputs))
    with FlopCounterMode(display=False, custom_mapping=_CUSTOM) as bwd:
        loss.backward()
    return StepFlops(fwd.get_total_flops(), bwd.get_total_flops(), int(inputs.shape[0]))
