"""What the optical-flow baselines share: input scaling, the batch transform, the loss, the estimator.

Each model (OFF-ApexNet, STSTNet, HTNet) is a :class:`torch.nn.Module` whose ``forward`` takes the
cached motion image ``[B, 3, S, S]`` (u, v, strain; see :mod:`mer.protocols.flow`) and makes its own
input from it (resize to 28×28, crop facial regions...). Everything else is shared here and runs
through the generic :class:`~mer.zoo.deep.DeepEstimator` and the shared training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer.protocols.clipset import ClipSet
from mer.zoo.api import refuse_unknown_options
from mer.zoo.deep import DeepEstimator
from mer.zoo.threads import ThreadLimitedEstimator
from mer.zoo.train import TrainConfig

FEATURE = "flow"


class FlowScale(nn.Module):
    """Divides each channel (u, v, strain) by its RMS over the training set.

    Flow magnitudes differ by dataset (a 500 fps SAMM clip vs. SynthME) and by preparation size; the
    scale is measured on the training fold only (see :func:`fit_scale`) and stored as a buffer, so it
    travels with the weights. Zero stays zero and signs are kept (direction is the signal).
    """

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.scale.view(1, -1, 1, 1)


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """Area-average (or bilinear-upsample) a motion image batch to ``side``×``side``; values unchanged.

    The flow stays in the cached grid's pixel units: :class:`FlowScale` normalises the magnitude
    anyway, so rescaling it with the grid would change nothing the network sees.
    """
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    if x.shape[-1] > side:
        return F.adaptive_avg_pool2d(x, side)
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


@dataclass
class FlowTrainOptions:
    """Training choices of a flow baseline (defaults are per model; any can be passed as an option).

    Attributes:
        epochs: Training epochs.
        batch_size: Batch size.
        lr: Peak learning rate (AdamW, warm-up then cosine: the shared loop).
        weight_decay: AdamW weight decay.
        flip: Random horizontal flips at training time (u is negated with the image, so the motion
            stays physically consistent).
        label_smoothing: Cross-entropy label smoothing.
        cpu_threads: Torch threads while training / predicting on a CPU (None: leave as is). These
            networks are too small to gain from intra-op threads, and on a busy machine the threads'
            spin-waiting made a 28×28 STSTNet step ~10× slower than one thread (measured).
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    flip: bool = True
    label_smoothing: float = 0.0
    cpu_threads: int | None = 1


def hflip_flow(x: torch.Tensor) -> torch.Tensor:
    """Mirror motion images left↔right: flip the pixels and negate u (channel 0)."""
    x = x.flip(-1)
    return torch.cat([-x[:, :1], x[:, 1:]], 1)


def make_batch_fn(flip: bool) -> Callable[[ClipSet, np.ndarray, bool, torch.device], dict[str, Any]]:
    """The batch transform: cached flow rows → float tensor on the device (+ flips when training)."""

    def batch_fn(clips: ClipSet, idx: np.ndarray, train: bool, device: torch.device) -> dict[str, Any]:
        x = torch.from_numpy(np.ascontiguousarray(clips.feature(FEATURE, idx), dtype=np.float32)).to(device)
        if train and flip:
            mask = torch.rand(len(x), device=device) < 0.5
            x = torch.where(mask.view(-1, 1, 1, 1), hflip_flow(x), x)
        y = torch.as_tensor(np.asarray(clips.labels)[np.asarray(idx)], dtype=torch.long, device=device)
        return {"flow": x, "label": y}

    return batch_fn


def fit_scale(model: nn.Module, train: ClipSet) -> None:
    """Set every :class:`FlowScale` of ``model`` from the training clips' flow (per-channel RMS)."""
    x = np.asarray(train.feature(FEATURE), dtype=np.float32)
    rms = np.sqrt(np.mean(x**2, axis=(0, 2, 3))) if len(x) else np.ones(x.shape[1])
    rms = np.where(rms > 1e-8, rms, 1.0)
    for m in model.modules():
        if isinstance(m, FlowScale):
            m.scale.copy_(torch.as_tensor(rms, dtype=m.scale.dtype))


def build_flow_estimator(
    model: nn.Module,
    name: str,
    defaults: FlowTrainOptions,
    seed: int = 0,
    device: str | torch.device | None = None,
    work_dir: str | None = None,
    **options: Any,
) -> DeepEstimator:
    """A :class:`DeepEstimator` for a flow model; ``options`` override fields of ``defaults``.

    Raises:
        UnknownOptionError: an option that is not a :class:`FlowTrainOptions` field.
    """
    refuse_unknown_options(name, set(options) - set(FlowTrainOptions.__dataclass_fields__))
    opts = FlowTrainOptions(**{**defaults.__dict__, **options})
    cfg = TrainConfig(
        epochs=opts.epochs,
        batch_size=opts.batch_size,
        lr=opts.lr,
        weight_decay=opts.weight_decay,
        warmup_epochs=min(3, max(1, opts.epochs // 10)),
        eval_batch_size=128,
        # The batches are cached flow rows (clips.feature): reading ahead, and pinning, every batch's
        # frames would only cost time (benchmarks/RESULTS.md has the measured difference).
        prefetch=0,
    )

    def loss_fn(net: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(net(batch["flow"]), batch["label"], label_smoothing=opts.label_smoothing)
        return loss, {}

    def setup_fn(est: DeepEstimator, train: ClipSet) -> None:
        with torch.no_grad():
            fit_scale(est.model, train)

    est = ThreadLimitedEstimator(
        model,
        loss_fn=loss_fn,
        batch_fn=make_batch_fn(opts.flip),
        logits_fn=lambda net, batch: net(batch["flow"]),
        setup_fn=setup_fn,
        config=cfg,
        seed=seed,
        device=device,
        work_dir=work_dir,
        name=name,
    )
    est.cpu_threads = opts.cpu_threads
    return est


# Flow models prepare 16 key frames (onset at 0, apex at 8) at 128×128: the flow is computed at that
# resolution and cached at 56×56. One preparation and one flow cache serve all three models.
FLOW_RECIPE = {"frames": 16, "size": 128}
