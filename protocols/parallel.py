"""How many folds a run trains at once: bounded by cores and by memory, with the reason said.

A fold process holds its model's weights, gradients and AdamW's two moments (16 bytes per fp32
parameter), the activations of one batch, and the interpreter with torch loaded. The estimate is rough
on purpose (activations are taken as :data:`ACTIVATION_BYTES_PER_VALUE` bytes per input value, the
process base as :data:`PROCESS_BYTES`); it exists to stop 32 copies of a 163 M-parameter model on a
32-core box, not to pack memory tight. ``--parallel-folds`` overrides it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from mer.resources import available_cores, available_memory

log = logging.getLogger("mer.runner")

BYTES_PER_PARAM = 16  # fp32 weights + gradients + AdamW exp_avg + exp_avg_sq
ACTIVATION_BYTES_PER_VALUE = 64  # kept activations per input value, forward and backward (estimate)
PROCESS_BYTES = 600 << 20  # Python, torch and the fold's working set beyond the model
MEMORY_SHARE = 0.8  # of the available memory; the rest is left to the page cache and the parent


@dataclass
class ParallelChoice:
    """The fold parallelism chosen and why.

    Attributes:
        folds: Folds trained at once.
        cores: CPU cores available.
        memory: Bytes of memory available (None: unknown).
        per_fold: Estimated bytes one fold process needs (None: not estimated).
        params: Parameter count the estimate used (None: unknown).
        reason: One line for the screen and run.json.
    """

    folds: int
    cores: int
    memory: int | None = None
    per_fold: int | None = None
    params: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fold_footprint(params: int, batch: int, frames: int, size: int) -> int:
    """Estimated bytes of one fold process training ``params`` parameters on ``batch`` clips of
    ``frames`` × ``size``² × 3 values."""
    activations = batch * frames * size * size * 3 * ACTIVATION_BYTES_PER_VALUE
    return params * BYTES_PER_PARAM + activations + PROCESS_BYTES


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def bound_folds(
    cores: int, memory: int | None, per_fold: int | None, params: int | None = None
) -> ParallelChoice:
    """One fold per core, but no more than fit in :data:`MEMORY_SHARE` of ``memory``."""
    if memory is None or per_fold is None:
        why = "memory unknown" if memory is None else "footprint unknown"
        return ParallelChoice(cores, cores, memory, per_fold, params, f"{cores} (one per core; {why})")
    fit = max(1, int(memory * MEMORY_SHARE // per_fold))
    folds = min(cores, fit)
    size = f"≈{_gib(per_fold)} per fold" + (f" ({params / 1e6:.1f} M parameters)" if params else "")
    limit = "cores" if folds == cores else "memory"
    reason = f"{folds} (bounded by {limit}: {cores} cores, {_gib(memory)} available, {size})"
    return ParallelChoice(folds, cores, memory, per_fold, params, reason)


def estimate_per_fold(
    spec: Any, size: str, recipe: Any, num_classes: int, options: dict[str, Any]
) -> tuple[int | None, int | None]:
    """``(bytes per fold, parameter count)`` of ``spec`` at ``size``, from one estimator built here on
    the CPU; ``(None, None)`` when it cannot be built here (the run itself will say why)."""
    try:
        est = spec.build(num_classes=num_classes, size=size, seed=0, device="cpu", **options)
    except Exception as e:  # the folds build it again and report a real problem there
        log.debug("fold footprint: %s could not be built here (%s)", spec.name, e)
        return None, None
    model = getattr(est, "model", None)
    params = sum(p.numel() for p in model.parameters()) if model is not None else 0
    batch = getattr(getattr(est, "config", None), "batch_size", 32)
    return fold_footprint(params, batch, recipe.frames, recipe.size), params or None


def choose_parallel_folds(
    spec: Any, size: str, recipe: Any, num_classes: int, options: dict[str, Any]
) -> ParallelChoice:
    """The default parallelism of a model already eligible for it (:func:`~mer.protocols.runner.
    auto_parallel_folds` says which are): one fold per core, bounded by memory."""
    cores = available_cores()
    if cores <= 1:
        return ParallelChoice(1, cores, reason="1 (one core)")
    per_fold, params = estimate_per_fold(spec, size, recipe, num_classes, options)
    return bound_folds(cores, available_memory(), per_fold, params)
