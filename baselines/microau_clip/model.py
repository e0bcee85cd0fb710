"""The Micro-AU CLIP network — a reconstruction from the abstract (SPEC B.3), not the authors' model.

Image tower (CLIP ViT) → patch tokens → **PTA** (Patch Token Attention: one learnable query per AU
attends only to the patches of its region, with key / value projections shared by every AU, so all AU
features live in one space) → **GDA** (Global Dependency Attention: self-attention across the K AU
tokens, whose K×K attention GDLoss pulls toward the training set's co-occurrence structure) → per-AU
presence from text similarity (**MiAUCL**: each AU token, projected to the text space, is compared with
the frozen text features of that AU's "present" and "absent" prompts).

Input (SPEC B.1, UNKNOWN; assumed): the apex frame, or the onset–apex pair. The pair is fed as six
channels, the apex and ``gain · (apex − onset)``; the difference channels of the patch embedding start
at zero on pretrained CLIP (so the tower starts as CLIP on the apex) and random on the tiny tower.

Ablation switches: ``pta=False`` gives every AU the pooled whole-image feature plus its own embedding
(the "whole face" features the abstract argues against); ``gda=False`` drops the dependency layers
(and with them GDLoss); ``text_head=False`` replaces the text-similarity head with a linear per-AU
classifier (no MiAUCL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mer.baselines.microau_clip.regions import region_masks
from mer.errors import OptionValueError
from mer.merclip.losses import LogitScale


@dataclass(frozen=True)
class MicroAUClipConfig:
    """Architecture of a Micro-AU CLIP model.

    Attributes:
        aus: AU numbers, one token each, in output order.
        image_size: Square input side of the image tower.
        patch_size: ViT patch size (the grid is ``image_size // patch_size`` squared).
        width: Image tower width (768 for ViT-B/16).
        layers: Image tower depth (only used by towers built here).
        heads: Image tower heads (idem).
        au_dim: Width of the AU tokens.
        embed_dim: Text embedding width (the text tower's projection, 512).
        gda_layers: Dependency blocks.
        gda_heads: Heads of each dependency block.
        input: "apex" (3 channels) or "pair" (apex and onset–apex difference, 6 channels).
        diff_gain: Scale of the difference channels (motions are a few grey levels).
        pta: Patch Token Attention over AU regions (else pooled whole-image features).
        gda: Global Dependency Attention (else AU tokens stay independent).
        text_head: AU presence from text similarity (MiAUCL) rather than a linear classifier.
        global_embedding: Also output a global embedding (the label-free "prompts" variant aligns it
            with the sample's AU-combination description).
        tau: Initial temperature of the text similarities (learnable).
    """

    aus: tuple[int, ...]
    image_size: int = 224
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    heads: int = 12
    au_dim: int = 512
    embed_dim: int = 512
    gda_layers: int = 1
    gda_heads: int = 8
    input: str = "pair"
    diff_gain: float = 4.0
    pta: bool = True
    gda: bool = True
    text_head: bool = True
    global_embedding: bool = False
    tau: float = 0.07

    @property
    def grid(self) -> tuple[int, int]:
        g = self.image_size // self.patch_size
        return (g, g)

    @property
    def in_channels(self) -> int:
        if self.input not in ("apex", "pair"):
            raise OptionValueError(f"input must be 'apex' or 'pair', not {self.input!r}")
        return 6 if self.input == "pair" else 3


class PatchTokenAttention(nn.Module):
    """PTA: AU k's token is ``LN(q_k + Σ_p softmax_{p ∈ R_k}(q_k·W_K x_p / √d) W_V x_p)``.

    Args:
        in_dim: Patch token width.
        dim: AU token width.
        masks: ``[K, P]`` bool region masks (:func:`~.regions.region_masks`).
    """

    def __init__(self, in_dim: int, dim: int, masks: torch.Tensor) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(masks.shape[0], dim) * 0.02)
        self.key = nn.Linear(in_dim, dim)  # shared by every AU: "the same feature space"
        self.value = nn.Linear(in_dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("mask", masks.clone(), persistent=False)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens [N, P, C]`` → ``(au_tokens [N, K, D], attention [N, K, P])`` (zero outside regions)."""
        k, v = self.key(tokens), self.value(tokens)
        logits = torch.einsum("kd,npd->nkp", self.query, k) / math.sqrt(k.shape[-1])
        attn = logits.masked_fill(~self.mask, float("-inf")).softmax(-1)
        out = torch.einsum("nkp,npd->nkd", attn, v)
        # The query residual keeps each AU's identity: the shared projections alone would give two AUs
        # with the same region (12 and 15) the same token.
        return self.norm(out + self.query), attn


class GlobalAUTokens(nn.Module):
    """The no-PTA ablation: every AU token is the pooled whole-image feature plus an AU embedding."""

    def __init__(self, in_dim: int, dim: int, num_aus: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.embed = nn.Parameter(torch.randn(num_aus, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(pooled)[:, None] + self.embed)


class DependencyBlock(nn.Module):
    """One GDA block (pre-norm self-attention across AU tokens + MLP) that also returns its attention."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise OptionValueError(f"AU token width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [N, K, D]`` → ``(x, attention [N, K, K])`` (rows sum to 1, mean over heads)."""
        n, k, d = x.shape
        q, kk, v = (
            self.qkv(self.norm1(x)).reshape(n, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        )
        attn = (q @ kk.transpose(-2, -1) / math.sqrt(d // self.heads)).softmax(-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(n, k, d))
        x = x + self.mlp(self.norm2(x))
        return x, attn.mean(1)


def expand_patch_embedding(conv: nn.Conv2d, zero_new: bool) -> nn.Conv2d:
    """A copy of ``conv`` taking 6 channels: the first 3 keep its weights, the difference channels are
    zero (pretrained tower: starts as CLIP on the apex) or randomly initialised."""
    new = nn.Conv2d(6, conv.out_channels, conv.kernel_size, conv.stride, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight[:, :3] = conv.weight
        if zero_new:
            new.weight[:, 3:] = 0
        else:
            nn.init.kaiming_uniform_(new.weight[:, 3:], a=math.sqrt(5))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


class MicroAUClip(nn.Module):
    """Micro-AU CLIP (reconstruction from the abstract).

    Args:
        cfg: Architecture.
        visual: An open_clip ``VisionTransformer`` (its ``conv1`` is widened for the pair input).
        pretrained_visual: True when ``visual`` holds pretrained weights (the difference channels then
            start at zero).
    """

    def __init__(self, cfg: MicroAUClipConfig, visual: nn.Module, pretrained_visual: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        k = len(cfg.aus)
        visual.output_tokens = True  # forward gives (pooled, patch tokens)
        if cfg.in_channels == 6:
            visual.conv1 = expand_patch_embedding(visual.conv1, zero_new=pretrained_visual)
        self.visual = visual
        if cfg.pta:
            self.pta: nn.Module = PatchTokenAttention(cfg.width, cfg.au_dim, region_masks(cfg.aus, cfg.grid))
        else:
            self.pta = GlobalAUTokens(visual.output_dim, cfg.au_dim, k)
        self.gda = nn.ModuleList(
            [DependencyBlock(cfg.au_dim, cfg.gda_heads) for _ in range(cfg.gda_layers)] if cfg.gda else []
        )
        if cfg.text_head:
            self.au_proj = nn.Linear(cfg.au_dim, cfg.embed_dim, bias=False)
            self.logit_scale = LogitScale(cfg.tau, learnable=True)
            # [K, 2, E] normalised text features of (absent, present) prompts; set by the estimator.
            self.register_buffer("anchors", torch.zeros(k, 2, cfg.embed_dim))
        else:
            self.cls_weight = nn.Parameter(torch.randn(k, cfg.au_dim) * 0.02)
            self.cls_bias = nn.Parameter(torch.zeros(k))
        if cfg.global_embedding:
            self.global_proj = nn.Linear(cfg.au_dim, cfg.embed_dim, bias=False)
        # Row-stochastic AU co-occurrence target of GDLoss, from the training labels (set by the estimator).
        self.register_buffer("cooccurrence", torch.full((k, k), 1.0 / k))

    def set_anchors(self, absent: torch.Tensor, present: torch.Tensor) -> None:
        """Store the per-AU ``[K, E]`` text features of the absent / present prompts (normalised here)."""
        a = torch.stack([absent, present], dim=1).float().to(self.anchors.device)
        self.anchors.copy_(F.normalize(a, dim=-1))

    def scale(self) -> torch.Tensor:
        return self.logit_scale().clamp(max=100.0)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``image [N, C, H, W]`` → ``logits [N, K]`` (presence logits) and the intermediate tensors.

        Also returns ``au_tokens``; with PTA ``pta_attn [N, K, P]``; with GDA ``gda_attn [N, K, K]``
        (mean over blocks); with the text head ``text_logits [N, K, 2]`` and ``au_embedding``; with the
        global embedding ``embedding [N, E]``.
        """
        pooled, tokens = self.visual(image)
        out: dict[str, torch.Tensor] = {}
        if self.cfg.pta:
            au, out["pta_attn"] = self.pta(tokens)
        else:
            au = self.pta(pooled)
        if len(self.gda):
            maps = []
            for block in self.gda:
                au, a = block(au)
                maps.append(a)
            out["gda_attn"] = torch.stack(maps).mean(0)
        out["au_tokens"] = au
        if self.cfg.text_head:
            emb = F.normalize(self.au_proj(au).float(), dim=-1)
            text_logits = self.scale() * torch.einsum("nke,kce->nkc", emb, self.anchors)
            out["au_embedding"], out["text_logits"] = emb, text_logits
            out["logits"] = text_logits[..., 1] - text_logits[..., 0]  # softmax over {absent, present}
        else:
            out["logits"] = (au * self.cls_weight).sum(-1) + self.cls_bias
        if self.cfg.global_embedding:
            out["embedding"] = self.global_proj(au.mean(1))
        return out
