"""Training throughput of MER-CLIP: the optimized path against a plain reference, on one device, in
one process, plus the projected wall time of every LOSO protocol at the measured rate.

Optimized path (what ``mer bench run`` trains with): bf16 autocast on CUDA, SDPA attention in the
encoder, global blocks and head, fused AdamW on CUDA, text features looked up in the per-run prompt
cache (the frozen text tower never runs in the step), clips streamed from a memory-mapped cache by a
read-ahead thread into pinned memory, optional ``torch.compile`` and activation checkpointing.

Reference path: fp32, eager attention (scores materialised), the frozen text tower encoding every
sample's prompt inside the step, plain AdamW, clips read in the step.

Both paths train the same network on the same batches (no augmentation in either, so the number is
the model's). Model FLOPs are counted from the operators of one forward + backward pass
(:mod:`mer.zoo.flops`, on the ``meta`` device), not estimated.

Usage::

    python benchmarks/train_throughput.py --size tiny --batch 8 --steps 5
    python benchmarks/train_throughput.py --size base --batch 16 --steps 30 --json out.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mer.merclip.augment import to_model_input
from mer.merclip.estimator import Variant, model_config
from mer.merclip.losses import clip_loss, focal_loss
from mer.merclip.model import MerClip
from mer.merclip.prompts import TEMPLATES
from mer.merclip.recipes import PREPARE
from mer.merclip.text import FrozenTextTower, PromptBank, tiny_clip
from mer.merclip.uniformerv2 import set_attention
from mer.protocols.clipset import ClipSet
from mer.protocols.sample import Sample
from mer.sweep.cost import TABLE_III_COUNTS
from mer.zoo.flops import bf16_peak, count_step_flops
from mer.zoo.loader import PrefetchingClips
from mer.zoo.train import param_groups

# Table III sample counts (SPEC A.1) of each protocol (split protocols: their training clips); the fold
# count comes from the registry. In LOSO every sample is tested once, so one epoch over all folds trains
# on N·(F − 1) clips.
PROTOCOL_SAMPLES: dict[str, int] = {
    k: v[0] if isinstance(v, tuple) else v for k, v in TABLE_III_COUNTS.items()
}
EPOCHS = 55
NUM_CLASSES = 3
DESCRIPTIONS = [
    ["raising the inner part of the brows"],
    ["lowering the brows"],
    ["a combination of raising the cheeks and pulling the corners of the lips"],
    ["a combination of lowering the brows and tightening the lids"],
    ["raising the upper lids"],
    ["a combination of raising the inner part of the brows and raising the outer part of the brows"],
]


@dataclass
class PathResult:
    """One path's measurement."""

    path: str
    clips_per_s: float
    step_ms: float
    peak_memory_mib: float
    peak_memory_kind: str
    losses: list[float]


def text_tower(size: str, embed_dim: int) -> FrozenTextTower:
    """The frozen tower: random weights of the real shape (FLOPs and speed do not depend on values)."""
    if size == "tiny":
        return FrozenTextTower(tiny_clip(embed_dim=embed_dim))
    import open_clip

    return FrozenTextTower(open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True))


def synthetic_clips(size: str, n: int, folder: Path) -> ClipSet:
    """``n`` random prepared clips in a memory-mapped file, as the prepared cache stores them."""
    prep = PREPARE[size]
    shape = (n, prep["frames"], prep["size"], prep["size"], 3)
    store = np.lib.format.open_memmap(folder / "clips.npy", mode="w+", dtype=np.uint8, shape=shape)
    store[:] = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    store.flush()
    store = np.load(folder / "clips.npy", mmap_mode="r")
    samples = [Sample("synthme", f"s{i % 4}", f"c{i}", "", 0, 1, 2, "happiness") for i in range(n)]
    return ClipSet(store, np.arange(n), samples, np.arange(n) % NUM_CLASSES, ("a", "b", "c"))


def build(size: str, device: torch.device) -> MerClip:
    torch.manual_seed(0)
    cfg = model_config(size, Variant())
    return MerClip(cfg, NUM_CLASSES, text_tower(size, cfg.embed_dim)).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_path(
    path: str,
    size: str,
    clips: ClipSet,
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
    compile_model: bool = False,
    grad_checkpointing: bool = False,
) -> PathResult:
    """Train ``warmup + steps`` steps on ``path`` ("optimized" or "reference"); time the last ``steps``."""
    optimized = path == "optimized"
    model = build(size, device)
    enc = model.cfg.encoder
    set_attention(model, "sdpa" if optimized else "eager")
    if grad_checkpointing and optimized:
        model.visual.encoder.set_grad_checkpointing(True)
    tower = model.text
    classes = torch.arange(len(clips)) % len(DESCRIPTIONS)
    gen = torch.Generator().manual_seed(0)
    bank = PromptBank(DESCRIPTIONS, TEMPLATES, tower).to(device) if optimized else None
    fused = {"fused": True} if optimized and device.type == "cuda" else {}
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-5, **fused)
    net = torch.compile(model) if compile_model and optimized else model
    use_amp = optimized and device.type == "cuda"
    order = np.random.default_rng(0).permutation(np.resize(np.arange(len(clips)), (warmup + steps) * batch))
    batches = [order[i * batch : (i + 1) * batch] for i in range(warmup + steps)]
    source = PrefetchingClips(clips, batches, device.type == "cuda", depth=2) if optimized else clips
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses: list[float] = []
    t0 = 0.0
    try:
        for step, idx in enumerate(batches):
            if step == warmup:
                _sync(device)
                t0 = time.perf_counter()
            if optimized:
                source.set_step(step)
            frames = torch.from_numpy(source.frames(idx)).to(device)
            video = to_model_input(frames, enc.frames, enc.input_resolution).transpose(1, 2).contiguous()
            cls_idx = classes[idx]
            if optimized:
                text = bank.sample(cls_idx, gen)
            else:  # the frozen tower encodes each sample's prompt in the step
                t = torch.randint(len(TEMPLATES), (len(idx),), generator=gen)
                prompts = [TEMPLATES[j].format(DESCRIPTIONS[c][0]) for c, j in zip(cls_idx, t, strict=True)]
                text = tower.encode(prompts)
            label = torch.as_tensor(clips.labels[idx], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = net(video)
                loss = clip_loss(out["embedding"], text, model.logit_scale()) + focal_loss(
                    out["logits"], label
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 20.0)
            opt.step()
            losses.append(loss.item())  # one host sync per step, as in the training loop
        _sync(device)
        elapsed = time.perf_counter() - t0
    finally:
        if optimized:
            source.close()
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda max allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process max RSS"
    del model, net, opt
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return PathResult(path, steps * batch / elapsed, 1000 * elapsed / steps, peak, kind, losses)


def model_flops_per_clip(size: str, batch: int) -> tuple[float, float]:
    """Forward and backward FLOPs per clip of the trained network (encoder, projectors, head), counted
    on the meta device; the frozen text tower is not part of the optimized step."""
    cfg = model_config(size, Variant())
    enc = cfg.encoder
    with torch.device("meta"):
        model = MerClip(cfg, NUM_CLASSES, text=nn.Identity())
        video = torch.empty(batch, 3, enc.frames, enc.input_resolution, enc.input_resolution)
    flops = count_step_flops(model, video)
    return flops.forward / batch, flops.backward / batch


def projections(clips_per_s: float, world: int = 1) -> dict[str, dict[str, float]]:
    """Training wall time of each protocol (55 epochs, every fold) at ``clips_per_s`` per device."""
    from mer.protocols.protocol import PROTOCOLS
    from mer.registrations import load_all

    load_all()
    out = {}
    for name, n in PROTOCOL_SAMPLES.items():
        folds = PROTOCOLS.get(name).expected_folds or 1
        per_epoch = n * (folds - 1) if folds > 1 else n
        clips = per_epoch * EPOCHS
        out[name] = {"folds": folds, "train_clips": clips, "minutes": clips / (clips_per_s * world) / 60}
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="tiny", choices=("tiny", "base"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=6, help="Untimed steps before timing.")
    ap.add_argument("--device", default=None, help="cuda | cpu (default: cuda when available)")
    ap.add_argument("--paths", default="reference,optimized")
    ap.add_argument("--compile", action="store_true", help="torch.compile the optimized path")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the reference is true fp32
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = synthetic_clips(args.size, max(2 * args.batch, 16), Path(tmp))
        # A first, untimed round of every path: the first steps of a process pay one-off costs
        # (kernel libraries paged in, oneDNN / cuDNN / cuBLAS set-up; on a busy CPU box the first
        # ~4 steps ran 30x slower) that would otherwise land on whichever path is timed first.
        for path in args.paths.split(","):
            run_path(path, args.size, clips, args.batch, 2, 0, device, args.compile, args.grad_checkpointing)
        for path in args.paths.split(","):
            results.append(
                run_path(
                    path,
                    args.size,
                    clips,
                    args.batch,
                    args.steps,
                    args.warmup,
                    device,
                    args.compile,
                    args.grad_checkpointing,
                )
            )
    fwd, bwd = model_flops_per_clip(args.size, args.batch)
    peak = bf16_peak(device_name(device)) if device.type == "cuda" else None
    by = {r.path: r for r in results}
    report: dict = {
        "device": device_name(device),
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "size": args.size,
        "batch": args.batch,
        "steps": args.steps,
        "flops_per_clip": {"forward": fwd, "backward": bwd, "train_step": fwd + bwd},
        "bf16_peak_flops": peak,
        "paths": {r.path: asdict(r) for r in results},
    }
    print(f"device {report['device']}  size {args.size}  batch {args.batch}  steps {args.steps}")
    gf = (fwd / 1e9, bwd / 1e9, (fwd + bwd) / 1e9)
    print("model FLOPs/clip: forward {:.3f} G, backward {:.3f} G, train step {:.3f} G".format(*gf))
    for r in results:
        achieved = r.clips_per_s * (fwd + bwd)
        frac = f"{achieved / peak:.1%} of bf16 peak" if peak else "bf16 peak: n/a on this device"
        print(
            f"{r.path:>9}: {r.clips_per_s:9.2f} clips/s  {r.step_ms:9.1f} ms/step  "
            f"peak {r.peak_memory_mib:8.1f} MiB ({r.peak_memory_kind})  "
            f"{achieved / 1e12:.4f} TFLOP/s  {frac}"
        )
        report["paths"][r.path]["model_flops_per_s"] = achieved
        report["paths"][r.path]["fraction_of_bf16_peak"] = achieved / peak if peak else None
    if "optimized" in by and "reference" in by:
        ratio = by["optimized"].clips_per_s / by["reference"].clips_per_s
        report["ratio"] = ratio
        print(f"ratio optimized/reference: {ratio:.2f}x")
    best = by.get("optimized", results[0])
    report["projection"] = projections(best.clips_per_s)
    print(
        f"projected training wall time of size {args.size} at {best.clips_per_s:.1f} clips/s "
        f"({best.path} path, one device, {EPOCHS} epochs, every fold):"
    )
    for name, p in report["projection"].items():
        print(
            f"  {name:14s} {p['folds']:3d} folds  {p['train_clips']:8d} clip-steps  {p['minutes']:10.1f} min"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
