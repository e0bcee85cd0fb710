"""HTNet (Wang, Zhang, Luo, Sankaranarayana; Neurocomputing 2024; MER-CLIP Tables IV and VI): a
hierarchical transformer over facial-region flow patches.

Input: the onset → apex motion image (u, v, optical strain). Four facial areas, left eye, right eye,
left lip and right lip, are cut out of it, each resampled to 14×14 and tiled 2×2 into one 28×28
image (eyes on top, lips below). The paper places the areas with facial landmarks; ``mer`` prepares
aligned face crops and uses fixed boxes in the crop instead (:data:`REGIONS`: the upper and lower
halves of each side, overlapping at the middle, so a brow, an eye, a lip corner and its cheek each
fall inside one area whatever the face's exact proportions).

Network (the released configuration: 28×28 input, 7×7 patches, width 256, 3 heads, 3 hierarchy levels
with 2, 2 and 10 transformer layers): the image becomes a 4×4 grid of patch tokens; level 0 runs self-
attention inside each facial area (2×2 tokens: local muscle motion), an aggregation block (3×3 conv,
norm, 3×3 max-pool stride 2) merges neighbours into a 2×2 grid, level 1 attends across the four areas
(how eyes and lips move together), a second aggregation gives one token that level 2 refines before a
linear classifier. Block-local attention as in NesT; one width at every level. ``tiny`` keeps the
structure with width 64 and 1, 1, 2 layers for CPU tests.

Two recipes (``-o recipe=...``; sources in ``baselines/RECIPES.md``): ``mer`` (default: AdamW 2e-4, wd
0.05, batch 32, 20 epochs, warm-up + cosine, flips, fixed boxes, RMS-scaled flow) and ``official``, as
the authors' released code trains it: plain Adam at 5e-5 with no weight decay, batch 256, 800 epochs,
constant LR, no augmentation, the flow as 8-bit images (0–255), and the four areas cut as 14×14 windows
of the 28×28 motion image around the eye centres and mouth corners of each face
(``regions="landmarks"``: dlib's 68-point predictor, the landmark aligner's, where the authors used
MTCNN's five points). The authors kept, per subject, the epoch with the best test accuracy: that is
``--select oracle`` (marked † in every table), not part of the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer.baselines.flow_common import (
    FLOW_RECIPE,
    FlowScale,
    FlowTrainOptions,
    authors_loop,
    build_flow_estimator,
    flow_plan,
    resize,
    resolve_options,
)
from mer.errors import OptionValueError, UnavailableError
from mer.protocols.clipset import ClipSet
from mer.zoo.api import ModelSpec, register_model

# (x0, y0, x1, y1) as fractions of the aligned face crop, in tile order: top-left, top-right,
# bottom-left, bottom-right. "Left" is the image's left.
REGIONS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.1, 0.55, 0.55),  # left eye + brow
    (0.45, 0.1, 1.0, 0.55),  # right eye + brow
    (0.0, 0.5, 0.55, 0.95),  # left lip corner + cheek
    (0.45, 0.5, 1.0, 0.95),  # right lip corner + cheek
)


@dataclass(frozen=True)
class HTNetConfig:
    """Architecture.

    Attributes:
        image_size: Side of the tiled 4-area input (each area is ``image_size // 2``).
        patch_size: Side of a patch token.
        dim: Token width.
        heads: Attention heads.
        dim_head: Width of one head.
        block_repeats: Transformer layers per hierarchy level, bottom (local) first.
        mlp_ratio: MLP hidden width / ``dim``.
        dropout: Dropout in attention/MLP outputs and before the classifier.
    """

    image_size: int = 28
    patch_size: int = 7
    dim: int = 256
    heads: int = 3
    dim_head: int = 64
    block_repeats: tuple[int, ...] = (2, 2, 10)
    mlp_ratio: int = 4
    dropout: float = 0.1


SIZES = {
    "base": HTNetConfig(),
    "tiny": HTNetConfig(dim=64, heads=2, dim_head=32, block_repeats=(1, 1, 2)),
}


def tile_regions(flow: torch.Tensor, side: int, regions=REGIONS) -> torch.Tensor:
    """Cut the four facial areas out of ``[B, C, S, S]`` and tile them 2×2 into ``[B, C, side, side]``."""
    s = flow.shape[-1]
    half = side // 2
    crops = []
    for x0, y0, x1, y1 in regions:
        patch = flow[..., round(y0 * s) : round(y1 * s), round(x0 * s) : round(x1 * s)]
        crops.append(F.adaptive_avg_pool2d(patch, half) if patch.shape[-1] >= half else resize(patch, half))
    top, bottom = torch.cat(crops[:2], -1), torch.cat(crops[2:], -1)
    return torch.cat([top, bottom], -2)


def tile_landmark_regions(flow: torch.Tensor, points: torch.Tensor, side: int) -> torch.Tensor:
    """The four areas cut around landmarks, tiled 2×2 into ``[B, C, side, side]`` (the authors' way).

    The motion image is brought to ``side``×``side`` (28), and a ``side/2`` window is cut around each
    eye centre and mouth corner, its centre kept at least ``side/4`` from the border so that it fits
    (the authors clamp to [7, 21] at 28). Tiles: eyes on top, mouth corners below, as with the boxes.

    Args:
        flow: ``[B, C, S, S]`` scaled motion images.
        points: ``[B, 5, 2]`` (x, y) fractions of the crop: left eye, right eye, nose, mouth left,
            mouth right (the nose is not used, as in the authors' code).
        side: Side of the tiled image.
    """
    x = resize(flow, side)
    half = side // 4
    centres = (points[:, (0, 1, 3, 4)] * side).round().long().clamp(half, side - half)  # [B, 4, 2]
    offs = torch.arange(-half, half, device=flow.device)
    rows = (centres[..., 1:2] + offs).unsqueeze(-1)  # [B, 4, 2h, 1]
    cols = (centres[..., 0:1] + offs).unsqueeze(-2)  # [B, 4, 1, 2h]
    b = torch.arange(x.shape[0], device=flow.device).view(-1, 1, 1, 1)
    crops = x.permute(0, 2, 3, 1)[b, rows, cols]  # [B, 4, 2h, 2h, C]
    crops = crops.permute(0, 1, 4, 2, 3)
    top = torch.cat([crops[:, 0], crops[:, 1]], -1)
    bottom = torch.cat([crops[:, 2], crops[:, 3]], -1)
    return torch.cat([top, bottom], -2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * heads * dim_head)
        self.proj = nn.Linear(heads * dim_head, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.drop(self.proj(out.transpose(1, 2).reshape(n, t, -1)))


class TransformerLayer(nn.Module):
    """Pre-norm self-attention + MLP on the tokens of one block."""

    def __init__(self, cfg: HTNetConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads, cfg.dim_head, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.dim, cfg.mlp_ratio * cfg.dim),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * cfg.dim, cfg.dim),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Aggregation(nn.Module):
    """Merges neighbouring blocks: 3×3 conv (mixes across block borders), layer norm, 3×3/2 max-pool."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm = nn.GroupNorm(1, dim)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.norm(self.conv(x)))


def _to_blocks(x: torch.Tensor, blocks: int) -> torch.Tensor:
    """``[B, D, G, G]`` → ``[B·blocks², (G/blocks)², D]``: each block's tokens as one sequence."""
    b, d, g, _ = x.shape
    s = g // blocks
    return x.view(b, d, blocks, s, blocks, s).permute(0, 2, 4, 3, 5, 1).reshape(b * blocks * blocks, s * s, d)


def _from_blocks(x: torch.Tensor, batch: int, blocks: int) -> torch.Tensor:
    n, t, d = x.shape
    s = int(round(t**0.5))
    return (
        x.view(batch, blocks, blocks, s, s, d)
        .permute(0, 5, 1, 3, 2, 4)
        .reshape(batch, d, blocks * s, blocks * s)
    )


class HTNet(nn.Module):
    """Facial areas → patch tokens → (local attention, aggregate) × levels → classifier."""

    def __init__(self, num_classes: int, cfg: HTNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or HTNetConfig()
        grid = cfg.image_size // cfg.patch_size
        levels = len(cfg.block_repeats)
        if cfg.image_size % cfg.patch_size or grid % 2 or grid < 2 ** (levels - 1):
            raise OptionValueError(
                f"HTNet: a {grid}×{grid} token grid cannot hold {levels} levels of 2×2 merges"
            )
        self.scale = FlowScale(3)
        self.embed = nn.Conv2d(3, cfg.dim, cfg.patch_size, stride=cfg.patch_size)
        # Blocks per side at each level: 2 at the bottom (the four facial areas), then one.
        self.blocks = [max(1, 2 ** (levels - 2 - lvl)) for lvl in range(levels)]
        self.grids = [grid // 2**lvl for lvl in range(levels)]
        self.pos = nn.ParameterList(nn.Parameter(torch.zeros(1, cfg.dim, g, g)) for g in self.grids)
        for p in self.pos:
            nn.init.trunc_normal_(p, std=0.02)
        self.levels = nn.ModuleList(
            nn.Sequential(*(TransformerLayer(cfg) for _ in range(n))) for n in cfg.block_repeats
        )
        self.aggregate = nn.ModuleList(Aggregation(cfg.dim) for _ in range(levels - 1))
        self.norm = nn.LayerNorm(cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.dim, num_classes)

    def forward_features(self, flow: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, 3, S, S]`` cached motion image (and ``[B, 5, 2]`` landmark fractions) → ``[B, dim]``.

        With ``points`` the four areas are cut around the landmarks, else from the fixed boxes.
        """
        scaled = self.scale(flow)
        if points is None:
            tiled = tile_regions(scaled, self.cfg.image_size)
        else:
            tiled = tile_landmark_regions(scaled, points, self.cfg.image_size)
        x = self.embed(tiled)
        b = x.shape[0]
        for lvl, layers in enumerate(self.levels):
            x = x + self.pos[lvl]
            x = _from_blocks(layers(_to_blocks(x, self.blocks[lvl])), b, self.blocks[lvl])
            if lvl < len(self.aggregate):
                x = self.aggregate[lvl](x)
        return self.norm(x.mean((2, 3)))

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(feats))

    def forward(self, flow: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(flow, points))


@dataclass
class HTNetOptions(FlowTrainOptions):
    """:class:`FlowTrainOptions` plus where the four facial areas come from.

    Attributes:
        regions: ``boxes`` (fixed fractions of the face crop, :data:`REGIONS`) or ``landmarks`` (windows
            around each face's eye centres and mouth corners; needs dlib's 68-point predictor).
    """

    CHOICES = {**FlowTrainOptions.CHOICES, "regions": ("boxes", "landmarks")}

    regions: str = "boxes"


_OFFICIAL = dict(authors_loop(lr=5e-5), regions="landmarks")
RECIPES = {
    "base": {
        "mer": HTNetOptions(epochs=20, batch_size=32, lr=2e-4, weight_decay=0.05),
        "official": HTNetOptions(**_OFFICIAL),
    },
    "tiny": {
        "mer": HTNetOptions(epochs=20, batch_size=32, lr=1e-3, weight_decay=0.05),
        "official": HTNetOptions(**_OFFICIAL),
    },
}

# Landmarks per prepared clip, shared by the folds of a process: (cache file, row) → [5, 2].
_POINTS: dict[tuple[str, int], np.ndarray] = {}


def landmark_points(clips: ClipSet, idx: np.ndarray) -> np.ndarray:
    """``[len(idx), 5, 2]`` landmark fractions of clips ``idx``, located on each clip's onset frame.

    The onset is used (the authors used the apex face): the crop is fixed for the clip, so the face
    sits where it sits at the onset, give or take the micro-movement itself.
    """
    from mer.protocols.faces import five_points

    idx = np.asarray(idx, dtype=np.int64)
    store = str(getattr(clips.store, "filename", id(clips.store)))
    keys = [(store, int(clips.rows[i])) for i in idx]
    missing = [i for i, k in zip(idx, keys, strict=True) if k not in _POINTS]
    if missing:
        onsets = clips.frames(np.asarray(missing))[:, 0]
        for i, frame in zip(missing, onsets, strict=True):
            _POINTS[(store, int(clips.rows[i]))] = five_points(frame)
    return np.stack([_POINTS[k] for k in keys])


def _check_landmarks(opts: HTNetOptions) -> list[str]:
    """Refuse a landmark run that cannot run here, before any training (never a silent swap).

    Returns:
        Notes for run.json: the official recipe run with the fixed boxes (asked for explicitly).
    """
    if opts.regions not in ("boxes", "landmarks"):
        raise OptionValueError(f"htnet: regions must be boxes or landmarks, not {opts.regions!r}")
    if opts.regions != "landmarks":
        if opts.recipe == "official":
            return [
                "htnet official recipe with mer's fixed boxes instead of landmark windows (-o regions=boxes)"
            ]
        return []
    if opts.flip:
        raise OptionValueError(
            "htnet: regions=landmarks with flip=true is not supported (the points are not mirrored)"
        )
    from mer.protocols.faces import _dlib

    try:
        _dlib()
    except RuntimeError as e:
        raise UnavailableError(
            f"htnet: regions=landmarks (the official recipe) needs dlib's 68-point predictor: {e}. "
            "To run the recipe with the fixed boxes instead, say so: -o regions=boxes "
            "(recorded in run.json with the other options)"
        ) from None
    return []


def build(
    num_classes: int,
    size: str = "base",
    seed: int = 0,
    device: Any = None,
    work_dir: str | None = None,
    **options: Any,
):
    """Registry builder.

    Raises:
        UnavailableError: ``regions=landmarks`` where dlib or its predictor is missing (the message says
            how to install it or to choose the boxes explicitly).
        OptionValueError: an unknown ``regions``, or landmarks with flips.
    """
    opts = resolve_options("htnet", RECIPES[size], options)
    _check_landmarks(opts)
    torch.manual_seed(seed)
    extras = None
    if opts.regions == "landmarks":

        def extras(clips: ClipSet, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
            return {"points": torch.as_tensor(landmark_points(clips, idx), device=device)}

    return build_flow_estimator(
        HTNet(num_classes, SIZES[size]), "htnet", opts, seed, device, work_dir, extras=extras
    )


register_model(
    ModelSpec(
        "htnet",
        build,
        ("base", "tiny"),
        "HTNet: hierarchical transformer over four facial-region flow patches (Tables IV, VI)",
        family="deep",
        recipe={"base": FLOW_RECIPE, "tiny": FLOW_RECIPE},
        option_fields=RECIPES["base"]["mer"],
        plan=flow_plan("htnet", RECIPES.__getitem__, _check_landmarks),
        inputs="flow",
    )
)
