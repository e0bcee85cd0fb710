"""MER-CLIP heads: visual projector (Eq. 8), token projector, Emotion Transformer Head (Eqs. 11–12),
and the linear head of the UniformerV2 baseline."""

from __future__ import annotations

import torch
from torch import nn

from mer.merclip.uniformerv2 import Attention


def _trunc_normal_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class VisualProjector(nn.Module):
    """Eq. 8: ``v = LayerNorm(f_g W_v)``, ``W_v`` without bias, init N(0, width^-1/2).

    Args:
        width: Encoder width (768 for B/16).
        dim: Joint embedding size (512, the text tower's output).
    """

    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.proj.weight, std=width**-0.5)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(fused))


class TokenProjector(nn.Module):
    """Every token of F (Eq. 4) through one shared Linear (no bias) and a LayerNorm: the head's input."""

    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.trunc_normal_(self.proj.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(tokens))


class FeedForward(nn.Module):
    """Linear → GELU → Dropout → Linear → Dropout."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class HeadBlock(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)); x + FFN(LN(x)); LayerNorm eps 1e-6."""

    def __init__(self, dim: int, heads: int, mlp_mult: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FeedForward(dim, mlp_mult * dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EmotionTransformerHead(nn.Module):
    """Emotion Transformer Head (SPEC A.3): 2 pre-norm blocks over the projected tokens; the class
    token (token 0, the fused video token) of *every* block goes through one shared LN → Dropout → FC,
    and the logits are averaged over blocks.

    Args:
        dim: Token width (512).
        num_classes: Emotion classes.
        depth: Blocks (2).
        heads: Attention heads (4).
        mlp_mult: FFN ratio (4).
        dropout: Readout dropout (0.1).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        depth: int = 2,
        heads: int = 4,
        mlp_mult: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(HeadBlock(dim, heads, mlp_mult) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)
        _trunc_normal_init(self)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [N, 1 + L, dim]`` → logits ``[N, num_classes]``."""
        logits = []
        x = tokens
        for block in self.blocks:
            x = block(x)
            logits.append(self.fc(self.dropout(self.norm(x[:, 0]))))
        return torch.stack(logits).mean(0)


class LinearHead(nn.Module):
    """Dropout(0.5) → Linear on the fused 768-d feature (the UniformerV2 baseline's TimeSformer head)."""

    def __init__(self, width: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)
        _trunc_normal_init(self)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(fused))
