"""Projected GPU-hours of a sweep: counted FLOPs × clips trained ÷ a device's rate.

FLOPs per clip are counted from the operators of one forward and one backward pass of the trained
network (:func:`mer.zoo.flops.count_step_flops` on the ``meta`` device: no compute, no memory); only
MER-CLIP-family models (every row of Tables VIII–XI) are counted, others are listed as not projected.
Clips per run: the sheet of a registered dataset under the protocol (exact train / test sizes per fold),
else the paper's Table III counts with the protocol's fold count; per fold, ``n_train × epochs`` training
steps and one forward pass over the test clips (every epoch under ``--select oracle``).

The rate is a measured one (``--device-tflops``, model FLOP/s a device sustained) or a datasheet dense
bf16 peak times an assumed utilisation, :data:`ASSUMED_UTILISATION` unless given: a target, not a
measurement (benchmarks/RESULTS.md has no GPU figure yet). Evaluation-time overheads (data loading,
start-up, the frozen text tower run once per fold) are left out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from mer.errors import OptionValueError
from mer.protocols.protocol import PROTOCOLS, Protocol
from mer.protocols.runner import RunConfig
from mer.zoo.api import MODELS
from mer.zoo.flops import BF16_PEAK

#: Model-FLOP utilisation assumed for a datasheet rate (the throughput target of benchmarks/RESULTS.md).
ASSUMED_UTILISATION = 0.35

#: Samples of each paper protocol (MER-CLIP Table III); split protocols: (train, test).
TABLE_III_COUNTS: dict[str, int | tuple[int, int]] = {
    "loso-samm-3": 133,
    "loso-samm-5": 136,
    "loso-casme2-3": 156,
    "loso-casme2-5": 249,
    "loso-casme3-3": 699,
    "loso-casme3-4": 860,
    "loso-casme3-7": 860,
    "dfme-test-a": (1856, 474),
    "dfme-test-b": (1856, 299),
}


def device_peak(device: str) -> tuple[str, float]:
    """Datasheet dense bf16 FLOP/s of a device named loosely ("h100", "H100 PCIe", "a6000").

    Raises:
        OptionValueError: a device the table does not hold (the message lists those it does).
    """

    def norm(s: str) -> str:
        return "".join(ch for ch in s.lower() if ch.isalnum())

    want = norm(device)
    for name in sorted(BF16_PEAK, key=len, reverse=True):
        if norm(name) == want or (want and norm(name).endswith(want)):
            return name, BF16_PEAK[name]
    raise OptionValueError(f"--device: no datasheet rate for {device!r}; known: {', '.join(BF16_PEAK)}")


@dataclass(frozen=True)
class FoldSizes:
    """Train / test clips of each fold, and where the counts come from."""

    sizes: tuple[tuple[float, float], ...]
    source: str


def fold_sizes(protocol: Protocol) -> FoldSizes | None:
    """Per-fold (train, test) clip counts from the registered dataset's sheet, else from Table III;
    None when neither is available (an unregistered dataset the paper does not count)."""
    from mer.protocols.config import dataset_entry
    from mer.protocols.datasets import DATASETS

    entry = dataset_entry(protocol.dataset)
    if entry is not None:
        from mer.protocols.prepare import resolve_sheet

        spec = DATASETS.get(protocol.dataset)
        ann = entry.get("annotations")
        sheet = resolve_sheet(spec, Path(entry["root"]), Path(ann) if ann else None)
        kept, _ = protocol.select(spec.parse(sheet).samples)
        folds = protocol.folds(kept)
        return FoldSizes(tuple((len(f.train), len(f.test)) for f in folds), f"sheet {sheet}")
    count = TABLE_III_COUNTS.get(protocol.name)
    if count is None:
        return None
    if isinstance(count, tuple):
        return FoldSizes((count,), "Table III counts (dataset not registered)")
    f = protocol.expected_folds or 1
    # LOSO: every sample is tested once, so the totals N·(F−1) train / N test are exact whatever the
    # subjects' sizes; the per-fold split is an even share.
    return FoldSizes(
        tuple((count - count / f, count / f) for _ in range(f)),
        f"Table III counts ({count} samples, {f} folds; dataset not registered)",
    )


@functools.lru_cache(maxsize=64)
def clip_flops(model: str, size: str, num_classes: int) -> tuple[float, float] | None:
    """(forward, backward) FLOPs per clip of a MER-CLIP-family model's training step; None for others."""
    import torch

    from mer.merclip.estimator import Variant, build_estimator, model_config
    from mer.merclip.model import MerClip
    from mer.zoo.flops import count_step_flops

    build = MODELS.get(model).build
    if not (isinstance(build, functools.partial) and build.func is build_estimator):
        return None
    variant = build.args[0] if build.args else build.keywords.get("variant")
    if not isinstance(variant, Variant):
        return None
    cfg = model_config(size, variant)
    enc, batch = cfg.encoder, 2
    with torch.device("meta"):
        net = MerClip(cfg, num_classes, text=torch.nn.Identity() if variant.align else None)
        video = torch.empty(batch, 3, enc.frames, enc.input_resolution, enc.input_resolution)
    f = count_step_flops(net, video)
    return f.forward / batch, f.backward / batch


@dataclass
class RunCost:
    """Projected cost of one run's remaining folds."""

    flops: float | None
    train_clips: float
    gpu_hours: float | None
    note: str


def project(config: RunConfig, folds: list[int] | None, rate: float, epochs: int | None) -> RunCost:
    """FLOPs and GPU-hours of ``folds`` (None: every fold) of ``config`` at ``rate`` FLOP/s, training
    ``epochs`` epochs (the run plan's; None: not projected)."""
    spec, protocol = MODELS.get(config.model), PROTOCOLS.get(config.protocol)
    size = spec.check_size(config.size)
    sizes = fold_sizes(protocol)
    if sizes is None:
        return RunCost(None, 0, None, f"no sample count for {protocol.name}: register its dataset")
    todo = range(len(sizes.sizes)) if folds is None else folds
    per = clip_flops(config.model, size, protocol.num_classes)
    if per is None or epochs is None:
        return RunCost(None, 0, None, f"{spec.family} model: not projected (no counted FLOPs)")
    fwd, bwd = per
    evals = epochs if config.select == "oracle" else 1
    train = sum(sizes.sizes[i][0] for i in todo) * epochs
    flops = train * (fwd + bwd) + sum(sizes.sizes[i][1] for i in todo) * evals * fwd
    return RunCost(flops, train, flops / rate / 3600, sizes.source)


def describe_rate(device: str | None, tflops: float | None, utilisation: float | None) -> tuple[float, str]:
    """The rate (FLOP/s) a projection uses and one line saying where it comes from.

    Raises:
        OptionValueError: an unknown device.
    """
    if tflops is not None:
        return tflops * 1e12, f"measured rate {tflops:g} TFLOP/s of model FLOPs (--device-tflops)"
    name, peak = device_peak(device or "H100")
    u = ASSUMED_UTILISATION if utilisation is None else utilisation
    how = "assumed" if utilisation is None else "given"
    return peak * u, (
        f"{name}: datasheet dense bf16 {peak / 1e12:g} TFLOP/s × {u:.0%} utilisation ({how}) = "
        f"{peak * u / 1e12:.1f} TFLOP/s"
    )
