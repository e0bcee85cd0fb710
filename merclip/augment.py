"""Clip augmentations (SPEC A.2) on the device the batch is on: AugMix, colour jitter, flip, and the
whole train-time pipeline that ends with LocalStaticFaceMix on normalised tensors.

Every random choice is made once per clip and applied to all of its frames (a clip is ``[T, C, H, W]``
to torchvision's functional ops, which treat leading dimensions as a batch).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from mer.merclip.lsfm import local_static_face_mix

# Normalisation of the authors' pipeline [C]: ImageNet mean/std on 0–255 RGB.
MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)
STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)

_MAX_LEVEL = 10.0


def _signed(value: float, rng: random.Random) -> float:
    return value if rng.random() < 0.5 else -value


def _posterize(clip: torch.Tensor, bits: int) -> torch.Tensor:
    shift = 8 - bits
    q = (clip * 255).round().to(torch.uint8)
    return ((q >> shift) << shift).to(clip.dtype) / 255


# AugMix operations (pytorchvideo's AugMix list) with RandAugment-style level→value maps; ``m`` is
# magnitude / 10. The exact pytorchvideo constants are assumed, not taken from its code.
def _augmix_ops() -> dict[str, Callable[[torch.Tensor, float, random.Random], torch.Tensor]]:
    def affine(clip, angle=0.0, tx=0.0, ty=0.0, sx=0.0, sy=0.0):
        h, w = clip.shape[-2:]
        return TF.affine(clip, angle=angle, translate=[tx * w, ty * h], scale=1.0, shear=[sx, sy])

    return {
        "auto_contrast": lambda c, m, r: TF.autocontrast(c),
        "equalize": lambda c, m, r: TF.equalize(c),
        "rotate": lambda c, m, r: affine(c, angle=_signed(30.0 * m, r)),
        "posterize": lambda c, m, r: _posterize(c, max(1, 8 - int(round(4 * m)))),
        "solarize": lambda c, m, r: TF.solarize(c, 1.0 - m),
        "shear_x": lambda c, m, r: affine(c, sx=_signed(17.0 * m, r)),
        "shear_y": lambda c, m, r: affine(c, sy=_signed(17.0 * m, r)),
        "translate_x": lambda c, m, r: affine(c, tx=_signed(0.45 * m, r)),
        "translate_y": lambda c, m, r: affine(c, ty=_signed(0.45 * m, r)),
        "saturation": lambda c, m, r: TF.adjust_saturation(c, 1.0 + _signed(0.9 * m, r)),
        "contrast": lambda c, m, r: TF.adjust_contrast(c, 1.0 + _signed(0.9 * m, r)),
        "brightness": lambda c, m, r: TF.adjust_brightness(c, 1.0 + _signed(0.9 * m, r)),
        "sharpness": lambda c, m, r: TF.adjust_sharpness(c, 1.0 + _signed(0.9 * m, r)),
    }


AUGMIX_OPS = _augmix_ops()


def augmix_clip(
    clip: torch.Tensor, rng: random.Random, magnitude: float = 1.0, width: int = 3, alpha: float = 1.0
) -> torch.Tensor:
    """AugMix on one clip ``[T, C, H, W]`` in [0, 1]: ``width`` chains of 1–3 random ops (the same ops
    for every frame), mixed with Dirichlet(α) weights, then blended with the clip by Beta(α, α)."""
    m = magnitude / _MAX_LEVEL
    names = list(AUGMIX_OPS)
    weights = torch.distributions.Dirichlet(torch.full((width,), alpha)).sample().tolist()
    mixed = torch.zeros_like(clip)
    for wgt in weights:
        chain = clip
        for _ in range(rng.randint(1, 3)):
            chain = AUGMIX_OPS[rng.choice(names)](chain, m, rng).clamp(0, 1)
        mixed = mixed + wgt * chain
    beta = torch.distributions.Beta(alpha, alpha).sample().item()
    return beta * clip + (1 - beta) * mixed


def color_jitter_clip(
    clip: torch.Tensor, rng: random.Random, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1
) -> torch.Tensor:
    """ColorJitter with one parameter set per clip, the four adjustments in random order."""
    ops = [
        lambda c: TF.adjust_brightness(c, rng.uniform(1 - brightness, 1 + brightness)),
        lambda c: TF.adjust_contrast(c, rng.uniform(1 - contrast, 1 + contrast)),
        lambda c: TF.adjust_saturation(c, rng.uniform(1 - saturation, 1 + saturation)),
        lambda c: TF.adjust_hue(c, rng.uniform(-hue, hue)),
    ]
    rng.shuffle(ops)
    for op in ops:
        clip = op(clip)
    return clip.clamp(0, 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``[..., 3, H, W]`` as ``[..., 1, H, W]`` (torchvision's rgb_to_grayscale)."""
    r, g, b = x.unbind(-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (x.dim() - 1)))


def color_jitter_batch(
    clips: torch.Tensor,
    apply: torch.Tensor,
    rng: random.Random,
    brightness: float = 0.5,
    contrast: float = 0.5,
    saturation: float = 0.5,
    hue: float = 0.1,
) -> torch.Tensor:
    """ColorJitter on a batch ``[N, T, 3, H, W]`` in [0, 1] as whole-batch tensor ops.

    Clip ``i`` (where ``apply[i]``) gets its own factors and its own random order of the four
    adjustments, the same for all of its frames: the distribution of :func:`color_jitter_clip`.
    Brightness, contrast and saturation are blends computed for the whole batch at once (torchvision's
    formulas, with per-clip factors); hue, which goes through HSV, runs on the clips that draw it.
    """
    n = clips.shape[0]
    dev, dt = clips.device, clips.dtype
    b = torch.tensor([rng.uniform(1 - brightness, 1 + brightness) for _ in range(n)], device=dev, dtype=dt)
    c = torch.tensor([rng.uniform(1 - contrast, 1 + contrast) for _ in range(n)], device=dev, dtype=dt)
    s = torch.tensor([rng.uniform(1 - saturation, 1 + saturation) for _ in range(n)], device=dev, dtype=dt)
    h = [rng.uniform(-hue, hue) for _ in range(n)]
    order = []
    for _ in range(n):
        o = [0, 1, 2, 3]
        rng.shuffle(o)
        order.append(o)
    order_t = torch.tensor(order, device=dev)
    x = clips
    for slot in range(4):
        do = apply & (order_t[:, slot] == 0)
        x = torch.where(_bcast(do, x), (x * _bcast(b, x)).clamp(0, 1), x)
        do = apply & (order_t[:, slot] == 1)
        mean = _grey(x).mean(dim=(-3, -2, -1), keepdim=True)  # per frame, as adjust_contrast
        x = torch.where(_bcast(do, x), (_bcast(c, x) * x + (1 - _bcast(c, x)) * mean).clamp(0, 1), x)
        do = apply & (order_t[:, slot] == 2)
        x = torch.where(_bcast(do, x), (_bcast(s, x) * x + (1 - _bcast(s, x)) * _grey(x)).clamp(0, 1), x)
        for i in torch.nonzero(apply & (order_t[:, slot] == 3)).flatten().tolist():
            x[i] = TF.adjust_hue(x[i], h[i])
    return x.clamp(0, 1)


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation switches and probabilities.

    Attributes:
        augmix: Probability of AugMix per clip (0 disables; the paper 0.5, the authors' code 1).
        augmix_magnitude: AugMix magnitude (1).
        color_jitter: Probability of ColorJitter per clip (paper 0.5, code 1).
        flip: Probability of a horizontal flip per clip.
        lsfm: Probability of LocalStaticFaceMix per clip (0.5).
        lsfm_lambda: λ of LSFM (0.5).
        lsfm_exclude_self: Never mix a clip with itself.
    """

    augmix: float = 0.5
    augmix_magnitude: float = 1.0
    color_jitter: float = 0.5
    flip: float = 0.5
    lsfm: float = 0.5
    lsfm_lambda: float = 0.5
    lsfm_exclude_self: bool = False

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(augmix=0.0, color_jitter=0.0, flip=0.0, lsfm=0.0)


def to_model_input(frames: torch.Tensor, frames_out: int, size: int, normalise: bool = True) -> torch.Tensor:
    """uint8 ``[N, T, H, W, 3]`` → float ``[N, T, 3, size, size]`` in [0, 1] (or normalised), with the
    time axis resampled to ``frames_out`` (uniform indices; frame 0 stays the onset)."""
    x = frames.permute(0, 1, 4, 2, 3).float().div_(255)
    n, t = x.shape[:2]
    if t != frames_out:
        idx = torch.linspace(0, t - 1, frames_out, device=x.device).round().long()
        x = x[:, idx]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(
            x.flatten(0, 1), size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        x = x.reshape(n, frames_out, 3, size, size)
    if normalise:
        x = normalise_clips(x)
    return x


def normalise_clips(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std on ``[..., 3, H, W]`` in [0, 1]."""
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype)[:, None, None]
    std = torch.tensor(STD, device=x.device, dtype=x.dtype)[:, None, None]
    return (x - mean) / std


def augment_batch(
    clips: torch.Tensor, cfg: AugmentConfig, rng: random.Random, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The train pipeline on ``[N, T, 3, H, W]`` in [0, 1]: AugMix (per clip), flip and ColorJitter
    (batched, per-clip draws), normalisation, then LSFM batch-wise. Returns ``[N, 3, T, H, W]``."""
    # AugMix draws its own chain of ops per clip, so it stays a per-clip loop (on the batch's device);
    # flip and colour jitter are whole-batch tensor ops with per-clip draws.
    n = clips.shape[0]
    out = []
    for clip in clips:
        if cfg.augmix > 0 and rng.random() < cfg.augmix:
            clip = augmix_clip(clip, rng, cfg.augmix_magnitude)
        out.append(clip)
    x = torch.stack(out) if out else clips
    flip = torch.tensor([cfg.flip > 0 and rng.random() < cfg.flip for _ in range(n)], device=x.device)
    x = torch.where(flip.view(-1, 1, 1, 1, 1), x.flip(-1), x)
    jitter = torch.tensor(
        [cfg.color_jitter > 0 and rng.random() < cfg.color_jitter for _ in range(n)], device=x.device
    )
    if bool(jitter.any()):
        x = color_jitter_batch(x, jitter, rng)
    x = normalise_clips(x).transpose(1, 2)
    if cfg.lsfm > 0:
        x, _ = local_static_face_mix(x, cfg.lsfm_lambda, cfg.lsfm, cfg.lsfm_exclude_self, generator)
    return x
