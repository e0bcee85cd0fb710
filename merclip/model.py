"""The MER-CLIP network: UniformerV2 encoder → (visual projector for the CLIP loss, token projector →
Emotion Transformer Head for the emotion), plus the frozen text tower and learnable temperature.

The same module, with switches, is every row of the ablation tables: no alignment, a linear head on
the fused feature instead of the transformer head (the UniformerV2 baseline when both are off).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from mer.errors import OptionValueError
from mer.merclip.head import EmotionTransformerHead, LinearHead, TokenProjector, VisualProjector
from mer.merclip.losses import LogitScale
from mer.merclip.text import FrozenTextTower
from mer.merclip.uniformerv2 import UniFormerV2, UniFormerV2Config, uniformerv2_config


@dataclass(frozen=True)
class MerClipConfig:
    """Architecture of a MER-CLIP model.

    Attributes:
        encoder: UniformerV2 encoder.
        embed_dim: Joint video–text embedding size (the text tower's output, 512).
        head: "transformer" (Emotion Transformer Head on the projected tokens) or "linear" (dropout
            0.5 + FC on the fused feature, the UniformerV2 baseline's head).
        head_dim: Token width of the transformer head (512).
        head_depth: Blocks of the transformer head (2).
        head_heads: Heads of the transformer head (4).
        head_dropout: Readout dropout of the transformer head (0.1).
        align: Train the visual projector against the text (the CLIP branch).
        tau: Initial temperature.
        learnable_tau: Learn the temperature (the authors' code) or keep τ fixed (the paper's text).
    """

    encoder: UniFormerV2Config = field(default_factory=lambda: uniformerv2_config("base"))
    embed_dim: int = 512
    head: str = "transformer"
    head_dim: int = 512
    head_depth: int = 2
    head_heads: int = 4
    head_dropout: float = 0.1
    align: bool = True
    tau: float = 0.07
    learnable_tau: bool = True


class MerClipVisual(nn.Module):
    """The authors' vision encoder form: backbone + visual projector + token projector.

    ``forward`` gives the CLIP embedding ``v`` (Eq. 8) and the head tokens ``LN(W [f_g; patches])``.
    """

    def __init__(self, encoder: UniFormerV2Config, embed_dim: int, head_dim: int) -> None:
        super().__init__()
        self.encoder = UniFormerV2(encoder)
        self.projector = VisualProjector(encoder.width, embed_dim)
        self.token_proj = TokenProjector(encoder.width, head_dim)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(fused [N, C], clip_embedding [N, D], head_tokens [N, 1 + T'·H'·W', D_h])``."""
        fused, patches = self.encoder.forward_features(video)
        tokens = self.token_proj(torch.cat([fused[:, None], patches], dim=1))
        return fused, self.projector(fused), tokens


class MerClip(nn.Module):
    """MER-CLIP (and its ablations, and the UniformerV2 baseline).

    Args:
        cfg: Architecture.
        num_classes: Emotion classes.
        text: The frozen text tower (None when ``cfg.align`` is False).
    """

    def __init__(self, cfg: MerClipConfig, num_classes: int, text: FrozenTextTower | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.head == "transformer":
            self.visual = MerClipVisual(cfg.encoder, cfg.embed_dim, cfg.head_dim)
            self.head: nn.Module = EmotionTransformerHead(
                cfg.head_dim, num_classes, cfg.head_depth, cfg.head_heads, 4, cfg.head_dropout
            )
        elif cfg.head == "linear":
            self.visual = MerClipVisual(cfg.encoder, cfg.embed_dim, cfg.head_dim)
            self.visual.token_proj = None  # the linear head reads the fused feature only
            self.head = LinearHead(cfg.encoder.width, num_classes)
        else:
            raise OptionValueError(f"unknown head {cfg.head!r} (transformer or linear)")
        if not cfg.align:
            self.visual.projector = None
        if cfg.align and text is None:
            raise OptionValueError("a MER-CLIP model with alignment needs a text tower")
        self.text = text if cfg.align else None
        self.logit_scale = LogitScale(cfg.tau, cfg.learnable_tau) if cfg.align else None

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """``video [N, 3, T, H, W]`` → ``{"logits", "embedding" (with alignment), "fused"}``."""
        fused, patches = self.visual.encoder.forward_features(video)
        out = {"fused": fused}
        if self.cfg.head == "transformer":
            tokens = self.visual.token_proj(torch.cat([fused[:, None], patches], dim=1))
            out["logits"] = self.head(tokens)
        else:
            out["logits"] = self.head(fused)
        if self.visual.projector is not None:
            out["embedding"] = self.visual.projector(fused)
        return out
