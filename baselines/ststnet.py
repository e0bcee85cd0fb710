"""STSTNet (Liong, Gan, See, Khor, Huang 2019; MER-CLIP Table IV): the shallow triple-stream CNN.

The input is the 28×28 stack of three motion channels (horizontal flow u, vertical flow v, optical
strain). Three parallel streams, each a single 3×3 convolution over all three channels with 3, 5 and 8
filters, ReLU and a 3×3 max-pool with stride 3 (28 → 10), are concatenated into 16 channels, average-
pooled 2×2 (→ 5×5) and classified by one fully connected layer. About 1,700 weights: the paper size is
the CPU size, ``tiny`` is the same network.

Two recipes (``-o recipe=...``; sources in ``baselines/RECIPES.md``): ``mer`` (default: BatchNorm before
ReLU, dropout before the classifier, AdamW with warm-up and cosine, 20 epochs, flips, RMS-scaled flow)
and ``official``, as the authors' released PyTorch code trains it: convolutions padded by 2 (28 → 30),
ReLU then BatchNorm, dropout 0.5 after each stream's pool, plain Adam at 5e-5, batch 256, 800 epochs,
constant LR, no augmentation, the flow as 8-bit images (0–255).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
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
from mer.zoo.api import ModelSpec, register_model


@dataclass(frozen=True)
class STSTNetConfig:
    """Architecture.

    Attributes:
        input_size: Side of the (u, v, strain) input.
        streams: Filters of each stream's 3×3 convolution.
        batch_norm: BatchNorm after each convolution (stabilises the very small network).
        dropout: Dropout rate.
        authors_layout: The authors' released layer order: padding 2, ReLU before BatchNorm, dropout
            after each stream's pool instead of before the classifier (``official`` recipe).
    """

    input_size: int = 28
    streams: tuple[int, ...] = (3, 5, 8)
    batch_norm: bool = True
    dropout: float = 0.5
    authors_layout: bool = False


class STSTNet(nn.Module):
    """Three shallow streams → concat → 2×2 average pool → FC."""

    def __init__(self, num_classes: int, cfg: STSTNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or STSTNetConfig()
        self.scale = FlowScale(3)
        pad = 2 if cfg.authors_layout else 1

        def stream(c: int) -> nn.Sequential:
            norm = nn.BatchNorm2d(c) if cfg.batch_norm else nn.Identity()
            act = nn.ReLU(inplace=True)
            pool = nn.MaxPool2d(3, stride=3, padding=1)
            if cfg.authors_layout:
                return nn.Sequential(
                    nn.Conv2d(3, c, 3, padding=pad), act, norm, pool, nn.Dropout(cfg.dropout)
                )
            return nn.Sequential(nn.Conv2d(3, c, 3, padding=pad), norm, act, pool)

        self.streams = nn.ModuleList(stream(c) for c in cfg.streams)
        self.pool = nn.AvgPool2d(2)
        conv = cfg.input_size + 2 * pad - 2  # 28 (mer) or 30 (authors)
        side = ((conv + 2 - 3) // 3 + 1) // 2  # → 10 (max-pool) → 5 (avg-pool)
        self.drop = nn.Identity() if cfg.authors_layout else nn.Dropout(cfg.dropout)
        self.head = nn.Linear(sum(cfg.streams) * side * side, num_classes)

    def forward_features(self, flow: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` (u, v, strain) → ``[B, 16·5·5]``."""
        x = resize(self.scale(flow), self.cfg.input_size)
        return self.pool(torch.cat([s(x) for s in self.streams], 1)).flatten(1)

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(feats))

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(flow))


RECIPES = {
    "mer": FlowTrainOptions(epochs=20, batch_size=32, lr=5e-3, weight_decay=1e-4),
    # The authors' main.py: Adam(lr=5e-5), batch 256, 800 epochs, the last epoch's model, cv2.imread'd
    # 8-bit flow images; no augmentation, no schedule, no clipping.
    "official": FlowTrainOptions(**authors_loop(lr=5e-5)),
}


def build(
    num_classes: int,
    size: str = "base",
    seed: int = 0,
    device: Any = None,
    work_dir: str | None = None,
    **options: Any,
):
    """Registry builder (``tiny`` is the paper architecture)."""
    opts = resolve_options("ststnet", RECIPES, options)
    torch.manual_seed(seed)
    model = STSTNet(num_classes, STSTNetConfig(authors_layout=opts.recipe == "official"))
    return build_flow_estimator(model, "ststnet", opts, seed, device, work_dir)


register_model(
    ModelSpec(
        "ststnet",
        build,
        ("base", "tiny"),
        "STSTNet: shallow triple-stream CNN on onset→apex u, v, optical strain at 28×28 (Table IV)",
        family="deep",
        recipe={"base": FLOW_RECIPE, "tiny": FLOW_RECIPE},
        option_fields=RECIPES["mer"],
        plan=flow_plan("ststnet", lambda size: RECIPES),
        inputs="flow",
    )
)
