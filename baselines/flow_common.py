"""What the optical-flow baselines share: input scaling, the batch transform, the loss, the estimator.

Each model (OFF-ApexNet, STSTNet, HTNet) is a :class:`torch.nn.Module` whose ``forward`` takes the
cached motion image ``[B, 3, S, S]`` (u, v, strain; see :mod:`mer.protocols.flow`) and makes its own
input from it (resize to 28×28, crop facial regions...). Everything else is shared here and runs
through the generic :class:`~mer.zoo.deep.DeepEstimator` and the shared training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer.errors import OptionValueError
from mer.protocols.clipset import ClipSet
from mer.zoo.api import ModelPlan, refuse_unknown_options
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


class MinMax255(nn.Module):
    """Maps each sample's u, v and strain to [0, 255] by its own minimum and maximum.

    The input the flow baselines' authors trained on: 8-bit flow images (one per sample, each channel
    min-max normalised, read back as 0–255 floats with no further scaling). Nothing to fit; a constant
    channel maps to 0.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo = x.amin(dim=(-2, -1), keepdim=True)
        span = x.amax(dim=(-2, -1), keepdim=True) - lo
        return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12) * 255.0, torch.zeros_like(x))


INPUT_SCALES = ("rms", "minmax255")


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
    """Training choices of a flow baseline (defaults are per model and recipe; any can be passed as an
    option).

    Attributes:
        recipe: ``mer`` (mer's own, the default) or ``official`` (as the model's authors trained it; see
            ``baselines/RECIPES.md``). Chosen with ``-o recipe=...``; the other fields then default to
            that recipe's values.
        epochs: Training epochs.
        batch_size: Batch size.
        lr: Peak learning rate (AdamW, warm-up then cosine: the shared loop).
        weight_decay: AdamW weight decay (0 with ``schedule="constant"`` is plain Adam, the authors'
            optimiser: AdamW without decay takes the same steps).
        schedule: ``warmup-cosine`` (the shared loop's) or ``constant`` (no warm-up, no decay).
        grad_clip: Max gradient norm (None: no clipping).
        input_scale: ``rms`` (each channel divided by its RMS over the training fold) or ``minmax255``
            (each sample's channels mapped to [0, 255]: the authors' 8-bit flow images).
        flip: Random horizontal flips at training time (u is negated with the image, so the motion
            stays physically consistent).
        label_smoothing: Cross-entropy label smoothing.
        cpu_threads: Torch threads while training / predicting on a CPU (None: leave as is). These
            networks are too small to gain from intra-op threads, and on a busy machine the threads'
            spin-waiting made a 28×28 STSTNet step ~10× slower than one thread (measured).
    """

    # The values a text option takes (``mer models info`` shows them; an other value is refused).
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "recipe": ("mer", "official"),
        "schedule": ("warmup-cosine", "constant"),
        "input_scale": INPUT_SCALES,
    }

    recipe: str = "mer"
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "warmup-cosine"
    grad_clip: float | None = 20.0
    input_scale: str = "rms"
    flip: bool = True
    label_smoothing: float = 0.0
    cpu_threads: int | None = 1


Options = TypeVar("Options", bound=FlowTrainOptions)


def authors_loop(lr: float) -> dict[str, Any]:
    """The training loop the flow baselines' authors share (STSTNet's and HTNet's public code; assumed
    for OFF-ApexNet, whose paper states only Adam and its LR): plain Adam at ``lr`` without weight decay,
    batch 256, 800 epochs at a constant LR, no clipping, no flips, 8-bit flow images as input."""
    return dict(
        epochs=800,
        batch_size=256,
        lr=lr,
        weight_decay=0.0,
        schedule="constant",
        grad_clip=None,
        input_scale="minmax255",
        flip=False,
    )


def resolve_options(name: str, recipes: dict[str, Options], options: dict[str, Any]) -> Options:
    """The options of one run: the chosen recipe's values (``recipe=...``, default ``mer``) ← ``options``.

    Raises:
        UnknownOptionError: an option that is not a field of the recipe's options class.
        OptionValueError: an unknown recipe, schedule or input scale (exit code 2).
    """
    options = dict(options)
    recipe = str(options.pop("recipe", "mer"))
    if recipe not in recipes:
        raise OptionValueError(f"{name}: unknown recipe {recipe!r}; recipes: {', '.join(recipes)}")
    base = recipes[recipe]
    refuse_unknown_options(name, set(options) - {f.name for f in fields(base)})
    opts = replace(base, recipe=recipe, **options)
    if opts.schedule not in ("warmup-cosine", "constant"):
        raise OptionValueError(f"{name}: schedule must be warmup-cosine or constant, not {opts.schedule!r}")
    if opts.input_scale not in INPUT_SCALES:
        raise OptionValueError(
            f"{name}: input_scale must be one of {', '.join(INPUT_SCALES)}, not {opts.input_scale!r}"
        )
    return opts


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


def flow_plan(
    name: str,
    recipes: Callable[[str], dict[str, FlowTrainOptions]],
    check: Callable[[Any], list[str]] | None = None,
) -> Callable[..., ModelPlan]:
    """The ``ModelSpec.plan`` of a flow model: its resolved training values, without building it.

    Args:
        name: Model name.
        recipes: Size → the model's recipes.
        check: Refuses what the builder would refuse for these options and returns notes on anything
            that differs from the recipe asked for (both printed and kept in run.json).
    """

    def plan(*, size: str, protocol: str, options: dict[str, Any]) -> ModelPlan:
        opts = resolve_options(name, recipes(size), options)
        notes = check(opts) if check else []
        training = {k: v for k, v in opts.__dict__.items() if k != "cpu_threads"}
        training["optimizer"] = (
            "Adam (AdamW without weight decay), constant LR"
            if opts.schedule == "constant" and opts.weight_decay == 0
            else f"AdamW, {opts.schedule}"
        )
        return ModelPlan(training=training, notes=notes)

    return plan


BatchExtras = Callable[[ClipSet, np.ndarray, torch.device], dict[str, torch.Tensor]]


def build_flow_estimator(
    model: nn.Module,
    name: str,
    opts: FlowTrainOptions,
    seed: int = 0,
    device: str | torch.device | None = None,
    work_dir: str | None = None,
    extras: BatchExtras | None = None,
) -> DeepEstimator:
    """A :class:`DeepEstimator` for a flow model trained with ``opts`` (see :func:`resolve_options`).

    Args:
        model: The network; its ``scale`` module is replaced by :class:`MinMax255` when
            ``opts.input_scale`` asks for it.
        name: Model name (messages, checkpoints).
        opts: Resolved options.
        seed: Seed of the training loop.
        device: Torch device (default: the best available).
        work_dir: Checkpoint folder.
        extras: Per-batch inputs beyond the flow (HTNet's landmark points), passed to the network as
            keyword arguments.
    """
    if opts.input_scale == "minmax255":
        model.scale = MinMax255()
    constant = opts.schedule == "constant"
    cfg = TrainConfig(
        epochs=opts.epochs,
        batch_size=opts.batch_size,
        lr=opts.lr,
        weight_decay=opts.weight_decay,
        warmup_epochs=0 if constant else min(3, max(1, opts.epochs // 10)),
        min_lr_ratio=1.0 if constant else TrainConfig.min_lr_ratio,
        grad_clip=opts.grad_clip,
        eval_batch_size=128,
        # The batches are cached flow rows (clips.feature): reading ahead, and pinning, every batch's
        # frames would only cost time (benchmarks/RESULTS.md has the measured difference).
        prefetch=0,
    )
    base_batch = make_batch_fn(opts.flip)

    def batch_fn(clips: ClipSet, idx: np.ndarray, train: bool, device: torch.device) -> dict[str, Any]:
        batch = base_batch(clips, idx, train, device)
        batch["extra"] = extras(clips, idx, device) if extras else {}
        return batch

    def logits(net: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return net(batch["flow"], **batch["extra"])

    def loss_fn(net: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(logits(net, batch), batch["label"], label_smoothing=opts.label_smoothing)
        return loss, {}

    def setup_fn(est: DeepEstimator, train: ClipSet) -> None:
        with torch.no_grad():
            fit_scale(est.model, train)

    est = ThreadLimitedEstimator(
        model,
        loss_fn=loss_fn,
        batch_fn=batch_fn,
        logits_fn=logits,
        setup_fn=setup_fn,
        config=cfg,
        seed=seed,
        device=device,
        work_dir=work_dir,
        name=name,
    )
    est.cpu_threads = opts.cpu_threads
    est.options = opts
    return est


# Flow models prepare 16 key frames (onset at 0, apex at 8) at 128×128: the flow is computed at that
# resolution and cached at 56×56. One preparation and one flow cache serve all three models.
FLOW_RECIPE = {"frames": 16, "size": 128}
