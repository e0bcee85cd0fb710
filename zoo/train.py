"""The training loop shared by every deep model.

AdamW without weight decay on norms, biases and other 1-D parameters; linear warm-up from 0.1× for
``warmup_epochs`` then cosine down to ``min_lr_ratio``× (both per iteration, as the authors' mmengine
schedule); grad-norm clipping; bf16 autocast on CUDA; an optional class-balanced sampler; a per-fold
checkpoint written after every epoch so that a stopped run resumes where it was; progress with
samples/s; a clear stop on a non-finite loss. The loop knows nothing about the model: it gets a
``batch_fn`` that turns clip indices into tensors on the device and a ``loss_fn`` that turns a batch
into a scalar loss.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mer.errors import IntegrityError, RunFailedError
from mer.protocols.clipset import ClipSet
from mer.protocols.io import atomic_path
from mer.zoo import distributed, watch
from mer.zoo.loader import PrefetchingClips

log = logging.getLogger("mer.train")

Batch = dict[str, Any]
BatchFn = Callable[[ClipSet, np.ndarray, bool, torch.device], Batch]
LossFn = Callable[[nn.Module, Batch, int], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainConfig:
    """Optimisation recipe.

    Attributes:
        epochs: Training epochs (55 in the paper).
        batch_size: Global batch size (16 = 2 GPUs × 8 in the authors' runs).
        lr: Peak learning rate.
        weight_decay: AdamW weight decay (not applied to 1-D parameters: norms, biases, tokens).
        betas: AdamW betas.
        warmup_epochs: Linear warm-up length in epochs.
        warmup_factor: Warm-up starts at this fraction of ``lr``.
        min_lr_ratio: Cosine decay ends at this fraction of ``lr``.
        grad_clip: Max global L2 gradient norm (None: no clipping).
        balanced_sampler: Draw each epoch with class-balanced weights (with replacement).
        amp: bf16 autocast when training on CUDA.
        eval_batch_size: Batch size for prediction.
        fused_adamw: The fused (one-kernel) AdamW on CUDA; same update, fewer launches.
        compile: ``torch.compile`` the network (first steps are slow while it compiles).
        grad_checkpointing: Activation checkpointing in models that offer it (large batches).
        prefetch: Batches of frames read ahead from the memory-mapped cache, into pinned memory on
            CUDA (0: read in the step).
        sync_bn: Under DDP, batch norm uses the statistics of the global batch, so N processes train
            exactly as one process on the whole batch (otherwise each rank normalises its own slice).
    """

    epochs: int = 55
    batch_size: int = 16
    lr: float = 5e-5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: int = 5
    warmup_factor: float = 0.1
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 20.0
    balanced_sampler: bool = False
    amp: bool = True
    eval_batch_size: int = 32
    fused_adamw: bool = True
    compile: bool = False
    grad_checkpointing: bool = False
    prefetch: int = 2
    sync_bn: bool = True


class NonFiniteLossError(RunFailedError, RuntimeError):
    """The loss became NaN or infinite: training stops rather than writing garbage weights."""


@dataclass
class TrainResult:
    """What :func:`train_model` did.

    Attributes:
        epochs_run: Epochs completed (including resumed ones).
        history: Per epoch: mean loss, extra loss terms, samples/s, optional validation score.
        selected_epoch: 0-based epoch whose weights the model holds at the end.
        selection: "last" or "oracle" (best validation score).
    """

    epochs_run: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    selected_epoch: int = -1
    selection: str = "last"


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: decayed weights, and every 1-D parameter / bias without decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at iteration ``step``: linear warm-up, then cosine to ``min_lr_ratio``."""
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warm:
        return cfg.warmup_factor + (1 - cfg.warmup_factor) * step / warm
    span = max(1, total - warm)
    progress = min(1.0, (step - warm) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def epoch_batches(labels: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches of one epoch: shuffled, or class-balanced draws with replacement.

    A last batch of one clip is dropped (BatchNorm and the contrastive loss need at least two).
    """
    n = len(labels)
    if cfg.balanced_sampler:
        y = labels if labels.ndim == 1 else labels.argmax(1)
        counts = np.bincount(y)
        w = 1.0 / counts[y]
        order = rng.choice(n, size=n, replace=True, p=w / w.sum())
    else:
        order = rng.permutation(n)
    batches = [order[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        r, w = dist.get_rank(), dist.get_world_size()
        # Each rank takes an equal slice of every global batch; the loss gathers them back.
        batches = [b[r * len(b) // w : (r + 1) * len(b) // w] for b in batches]
    return batches


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class CheckpointMismatchError(IntegrityError):
    """A checkpoint whose tensors do not fit the model (other code or other options made it)."""


def rebuilt_keys(model: nn.Module) -> set[str]:
    """State keys a checkpoint leaves out because the model rebuilds them: its frozen parameters (a
    frozen text tower is built again from its source, not saved; see :func:`trainable_state`)."""
    return {n for n, p in model.named_parameters() if not p.requires_grad}


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: object) -> None:
    """Load ``state`` into ``model``: every key must match except the ones :func:`rebuilt_keys` names.

    Raises:
        CheckpointMismatchError: a missing or an unexpected key (the first few are listed).
    """
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in rebuilt_keys(model)]
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{source} does not fit the model: {len(missing)} missing key(s) {missing[:3]}, "
            f"{len(unexpected)} unexpected {list(unexpected)[:3]}; it was made by other code or options. "
            "Delete it to train the fold from its beginning"
        )


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when it cannot be read: the file is then kept beside it as
    ``<name>.corrupt`` and the fold restarts from its beginning, which is said (one warning line)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("model", "optimizer", "scheduler", "epoch", "history"):
            state[key]  # noqa: B018 - a checkpoint without these cannot resume
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as e:
        kept = path.with_name(path.name + ".corrupt")
        path.replace(kept)
        why = (str(e).splitlines() or [type(e).__name__])[0].split(". ")[0]  # its first sentence
        log.warning(
            "checkpoint %s is corrupt (%s); the fold restarts from its beginning (file kept as %s)",
            path,
            why[:120],
            kept.name,
        )
        return None
    return state


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without frozen parameters (a frozen text tower is rebuilt, not saved)."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in frozen}


def train_model(
    model: nn.Module,
    train_set: ClipSet,
    *,
    loss_fn: LossFn,
    batch_fn: BatchFn,
    cfg: TrainConfig,
    device: torch.device,
    seed: int = 0,
    checkpoint: Path | None = None,
    evaluate: Callable[[nn.Module, int], float] | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set``.

    Args:
        model: The module, already on ``device``.
        train_set: Training clips.
        loss_fn: ``(model, batch, epoch) -> (loss, terms)``.
        batch_fn: ``(clips, idx, train, device) -> batch``; augmentation happens here, on the device.
        cfg: Optimisation recipe.
        device: Where to train.
        seed: Seeds the sampler and, per epoch, torch's RNG (a resumed run replays the same draws).
        checkpoint: File for the per-epoch checkpoint; an existing one is resumed.
        evaluate: ``(model, epoch) -> score`` after each epoch; when given, the best-scoring epoch's
            weights are restored at the end (oracle selection when the score is on the test fold).
        progress: Called after each epoch with that epoch's history row.

    Raises:
        NonFiniteLossError: a loss was NaN or infinite.
    """
    params = param_groups(model, cfg.weight_decay)
    fused = {"fused": True} if cfg.fused_adamw and device.type == "cuda" else {}
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, **fused)
    labels = np.asarray(train_set.labels)
    steps = len(epoch_batches(labels, cfg, np.random.default_rng(0)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, cfg))
    result = TrainResult(selection="oracle" if evaluate else "last")
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    start = 0
    state = read_checkpoint(checkpoint) if checkpoint is not None and checkpoint.exists() else None
    if state is not None:
        load_strict(model, state["model"], checkpoint)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["epoch"]) + 1
        result.history = list(state["history"])
        if state.get("best") is not None:
            best = (float(state["best"]["score"]), int(state["best"]["epoch"]), state["best"]["model"])
        log.info("resumed from %s at epoch %d", checkpoint, start)
    use_amp = cfg.amp and device.type == "cuda"
    if cfg.grad_checkpointing:
        for m in model.modules():
            if hasattr(m, "set_grad_checkpointing"):
                m.set_grad_checkpointing(True)
    net: nn.Module = model
    if distributed.is_distributed():
        if cfg.sync_bn:
            distributed.convert_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)
    main = distributed.is_main()
    for epoch in range(start, cfg.epochs):
        torch.manual_seed(seed * 100_003 + epoch)
        batches = epoch_batches(labels, cfg, np.random.default_rng([seed, epoch]))
        net.train()
        t0, seen, total, terms_sum = time.perf_counter(), 0, 0.0, {}
        # a TSN cache draws each segment's training frame anew every epoch (ClipSet.draw)
        clips: Any = train_set.drawn((seed, epoch)) if getattr(train_set, "pooled", False) else train_set
        if cfg.prefetch > 0:
            clips = PrefetchingClips(clips, batches, device.type == "cuda", cfg.prefetch)
        try:
            for step, idx in enumerate(batches):
                if cfg.prefetch > 0:
                    clips.set_step(step)
                batch = batch_fn(clips, idx, True, device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss, terms = loss_fn(net, batch, epoch)
                value = loss.item()  # the step's one host sync: it also guards the update below
                # Under DDP every rank decides together, so a NaN on one shard stops all of them
                # instead of leaving the others waiting in the gradient all-reduce.
                if not distributed.all_ranks_true(math.isfinite(value)):
                    where = ""
                    if distributed.is_distributed():
                        where = " on another rank" if math.isfinite(value) else " on this rank"
                    raise NonFiniteLossError(
                        f"non-finite loss ({value}){where} at epoch {epoch}, step {step}; terms {terms}. "
                        "Lower the learning rate or check the inputs; no checkpoint was written for this "
                        "epoch."
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_([p for g in params for p in g["params"]], cfg.grad_clip)
                opt.step()
                sched.step()
                seen += len(idx)
                total += value * len(idx)
                for k, v in terms.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + float(v) * len(idx)
        finally:
            if cfg.prefetch > 0:
                clips.close()
        dt = time.perf_counter() - t0
        # Under DDP each rank saw its slice: log the global-batch figures.
        total, seen_all = distributed.mean_across_ranks(total), distributed.mean_across_ranks(seen)
        terms_sum = {k: distributed.mean_across_ranks(v) for k, v in terms_sum.items()}
        seen = max(seen_all, 1e-9)
        world = distributed.info().world_size
        row = {"epoch": epoch, "loss": total / seen, "samples_per_s": world * seen / max(dt, 1e-9)}
        row.update({k: v / seen for k, v in terms_sum.items()})
        row["lr"] = opt.param_groups[0]["lr"]
        if evaluate is not None:
            score = float(evaluate(model, epoch))
            row["val_score"] = score
            if best is None or score > best[0]:
                best = (score, epoch, trainable_state(model))
        result.history.append(row)
        log.info(
            "epoch %d/%d loss %.4f %.1f samples/s%s",
            epoch + 1,
            cfg.epochs,
            row["loss"],
            row["samples_per_s"],
            f" val {row['val_score']:.4f}" if "val_score" in row else "",
        )
        if checkpoint is not None and main:  # one writer under DDP: every rank holds the same weights
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save(
                {
                    "model": trainable_state(model),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "epoch": epoch,
                    "history": result.history,
                    "best": None if best is None else {"score": best[0], "epoch": best[1], "model": best[2]},
                    "config": asdict(cfg),
                },
                checkpoint,
            )
        if main:
            watch.log_epoch(result.history, cfg.epochs)  # after the checkpoint: the two agree
        if progress is not None:
            progress(row)
    result.epochs_run = len(result.history)
    result.selected_epoch = cfg.epochs - 1
    if best is not None:
        load_strict(model, best[2], "the best epoch's weights")
        result.selected_epoch = best[1]
    return result
