"""Data-parallel training helpers: process group from ``torchrun``'s environment, rank facts, a
gradient-preserving gather for the contrastive negatives, and batch norm over the global batch.

Everything here is a no-op without a process group (or with one process), so single-GPU and CPU runs
never pay for it. Under ``torchrun --nproc-per-node N`` one fold trains data-parallel: every rank
takes an equal slice of each global batch, the contrastive loss sees the whole global batch
(:func:`gather_with_grad`), batch norm uses the statistics of the whole global batch
(:class:`GlobalBatchNorm`), DDP averages the gradients, and only rank 0 writes files. With these three
pieces one step on N processes computes the same loss and the same update as one process on the whole
global batch (``tests/test_ddp.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands.

    Attributes:
        rank: Global rank (0 without a process group).
        world_size: Number of processes (1 without a process group).
        local_rank: Rank on this machine (picks the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    """A process group with more than one process is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def info() -> DistInfo:
    """Rank facts of this process (from the process group, or ``torchrun``'s environment before it)."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local)
    return DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), local)


def is_main() -> bool:
    """Rank 0 (or no process group): the process that writes run files and checkpoints."""
    return info().is_main


def init_from_env(backend: str | None = None) -> DistInfo:
    """Start the process group when launched by ``torchrun`` with more than one process.

    Reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (and ``MASTER_ADDR`` / ``MASTER_PORT``) from the
    environment. NCCL on CUDA (each rank on GPU ``LOCAL_RANK``), gloo otherwise. Calling it again, or
    without ``torchrun``, does nothing.

    Args:
        backend: Override the backend choice.

    Returns:
        This process's :class:`DistInfo`.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return info()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return info()


def local_device() -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` under ``torchrun``, else the current CUDA device (set
    per worker by ``--parallel-folds``), else the CPU."""
    if torch.cuda.is_available():
        if "LOCAL_RANK" in os.environ:
            return torch.device("cuda", info().local_rank)
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if is_distributed():
        dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    """All ranks' rows concatenated; the backward sums every rank's gradient of this rank's rows.

    Ranks may hold different numbers of rows (a global batch that does not divide evenly): rows are
    padded to the largest count for the collective and trimmed after it.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        count = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
        counts = [torch.zeros_like(count) for _ in range(world)]
        dist.all_gather(counts, count)
        sizes = [int(c.item()) for c in counts]
        most = max(sizes)
        padded = x.new_zeros((most, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        ctx.sizes = sizes
        ctx.rank = dist.get_rank()
        return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Every rank computed the same global loss from the gathered rows, so the gradient of this
        # rank's rows is the sum over ranks (DDP's averaging of parameter gradients then gives the
        # gradient of the global loss exactly). all_reduce works on every backend, unlike
        # reduce_scatter on gloo; the tensor is only [global batch, D].
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` ``[n_rank, ...]`` of all ranks in rank order, differentiably.

    The identity without a process group. Rank counts may differ.
    """
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch across all ranks.

    Same parameters, buffers and state-dict keys as ``nn.BatchNorm{1,2,3}d``; evaluation, and training
    without a process group, are plain batch norm. Unlike ``nn.SyncBatchNorm`` it also runs on the
    CPU with gloo, which is what lets the 2-process CPU test check DDP against one process.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        local = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=torch.float32)
        stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), local])
        stats = _AllReduceSum.apply(stats)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp_min(1))
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm{1,2,3}d`` in ``module`` with :class:`GlobalBatchNorm`, in place.

    The new layers hold the *same* parameter and buffer objects, so an optimizer built before the
    conversion still updates them and the state dict keys do not change.
    """
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, (GlobalBatchNorm, nn.SyncBatchNorm)
        ):
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean = child.running_mean
                new.running_var = child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module


def mean_across_ranks(value: float) -> float:
    """The mean of a Python number over ranks (for logging the global-batch loss)."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def all_ranks_true(flag: bool) -> bool:
    """Whether ``flag`` holds on every rank (a collective: every rank must call it at the same step).

    A rank that stops alone (a NaN loss on its shard) would leave the others waiting forever in the
    next gradient all-reduce; deciding together lets every rank stop at the same step.
    """
    if not is_distributed():
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
