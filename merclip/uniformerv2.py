"""UniFormerV2 video encoder (SPEC A.3), the vision side of MER-CLIP.

A CLIP ViT whose patch embedding is a 3D convolution (time downsampled ×2), whose every layer is a
*local UniBlock* (two local multi-head relation aggregators around the per-frame self-attention), and
whose last layers feed *global UniBlocks*: one learnable video query token cross-attends over all tokens
of the clip and is carried from block to block. The video feature is the sigmoid-balanced fusion of that
query and the time-averaged frame class token (Eq. 3); the patch tokens of the final layer come out too
(Eq. 4). Reference key names are mapped onto these modules by :mod:`mer.merclip.convert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn
from torch.utils.checkpoint import checkpoint

from mer.errors import OptionValueError


@dataclass(frozen=True)
class UniFormerV2Config:
    """Architecture of a UniFormerV2 encoder.

    Attributes:
        input_resolution: Square input size in pixels.
        patch_size: Spatial patch size.
        width: Token width (768 for B/16).
        layers: Number of local UniBlocks (ViT layers).
        heads: Attention heads of the local blocks.
        frames: Input frames T (halved by the patch embedding when ``temporal_downsample``).
        temporal_downsample: 3D patch embedding with kernel 3 / stride 2 in time.
        dw_reduction: Channel reduction of the local MHRA (768 → 512 at 1.5).
        double_lmhra: Two local MHRA per block (before attention and before the MLP).
        return_list: 0-based layers after which a global UniBlock runs.
        global_heads: Heads of the global blocks.
        mlp_factor: MLP ratio of the global blocks.
        global_mlp_dropout: Dropout inside the global-block MLPs (one value per global block).
        backbone_drop_path: Maximum stochastic depth of the local blocks (linear in depth).
        global_drop_path: Maximum stochastic depth of the global blocks.
        onset_relative: Subtract the first (onset) frame from every frame before the patch embedding.
            Off for the paper's encoder; on for ``tiny``, which has no pretrained weights: trained from
            random init it cannot separate a few-pixel AU motion from the face's static appearance
            within a CPU budget, and the onset-relative clip holds only the motion (see
            ``tiny_input_ablation`` in benchmarks/RESULTS.md).
    """

    input_resolution: int = 224
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    heads: int = 12
    frames: int = 16
    temporal_downsample: bool = True
    dw_reduction: float = 1.5
    double_lmhra: bool = True
    return_list: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10, 11)
    global_heads: int = 12
    mlp_factor: float = 4.0
    global_mlp_dropout: tuple[float, ...] = field(default=(0.5,) * 8)
    backbone_drop_path: float = 0.0
    global_drop_path: float = 0.0
    onset_relative: bool = False

    @property
    def grid(self) -> int:
        return self.input_resolution // self.patch_size

    @property
    def time_tokens(self) -> int:
        """Frames after the patch embedding (T')."""
        return self.frames // 2 if self.temporal_downsample else self.frames

    @classmethod
    def from_reference(cls, cfg: dict) -> UniFormerV2Config:
        """Build from the reference implementation's keyword arguments (the fixtures' config JSON)."""
        if cfg.get("no_lmhra", False):
            raise OptionValueError("no_lmhra=True is not a MER-CLIP configuration")
        if cfg.get("n_dim", cfg["width"]) != cfg["width"]:
            raise OptionValueError("global blocks must have the backbone width (n_dim == width)")
        return cls(
            input_resolution=cfg["input_resolution"],
            patch_size=cfg["patch_size"],
            width=cfg["width"],
            layers=cfg["layers"],
            heads=cfg["heads"],
            frames=cfg["t_size"],
            temporal_downsample=cfg.get("temporal_downsample", True),
            dw_reduction=cfg.get("dw_reduction", 1.5),
            double_lmhra=cfg.get("double_lmhra", True),
            return_list=tuple(cfg["return_list"]),
            global_heads=cfg.get("n_head", cfg["heads"]),
            mlp_factor=cfg.get("mlp_factor", 4.0),
            global_mlp_dropout=tuple(cfg.get("mlp_dropout", (0.5,) * len(cfg["return_list"]))),
            backbone_drop_path=cfg.get("backbone_drop_path_rate", 0.0),
            global_drop_path=cfg.get("drop_path_rate", 0.0),
        )


UNIFORMERV2_SIZES: dict[str, UniFormerV2Config] = {
    # The paper's encoder: CLIP ViT-B/16, 16 frames of 224², global blocks after layers 4–11, drop
    # path 0.2 (backbone) / 0.4 (global blocks) as in the LOSO configs.
    "base": UniFormerV2Config(backbone_drop_path=0.2, global_drop_path=0.4),
    # CPU size: same structure, small width and input (8 frames of 48², patch 8 → 4 × 6×6 tokens).
    "tiny": UniFormerV2Config(
        input_resolution=48,
        patch_size=8,
        width=64,
        layers=4,
        heads=4,
        frames=8,
        return_list=(2, 3),
        global_heads=4,
        global_mlp_dropout=(0.5, 0.5),
        onset_relative=True,
    ),
}


def uniformerv2_config(size: str, **overrides) -> UniFormerV2Config:
    """The encoder config of ``size`` ("base" or "tiny") with field overrides."""
    if size not in UNIFORMERV2_SIZES:
        raise OptionValueError(f"unknown UniformerV2 size {size!r}; sizes: {', '.join(UNIFORMERV2_SIZES)}")
    return replace(UNIFORMERV2_SIZES[size], **overrides)


def _linspace(end: float, n: int) -> list[float]:
    """Stochastic-depth rates 0 → ``end`` over ``n`` blocks (plain Python: works on the meta device)."""
    return [end * i / (n - 1) if n > 1 else 0.0 for i in range(n)]


class QuickGELU(nn.Module):
    """CLIP's GELU approximation x·σ(1.702x); the ViT-B/16 weights were trained with it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Module):
    """Linear → QuickGELU → Dropout → Linear."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = QuickGELU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


class Attention(nn.Module):
    """Multi-head attention with one packed q/k/v projection, through ``scaled_dot_product_attention``.

    ``forward(x)`` is self-attention; ``forward(x, context)`` lets the queries of ``x`` attend over
    ``context`` (the global UniBlock's cross-attention), still with the one packed projection so the
    reference ``in_proj_weight`` maps one to one.
    """

    #: "sdpa" (fused ``scaled_dot_product_attention``, the default) or "eager" (scores materialised:
    #: the plain reference path of ``benchmarks/train_throughput.py``). Set with :func:`set_attention`.
    impl: str = "sdpa"

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise OptionValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        h = self.heads
        if context is None:
            q, k, v = self.qkv(x).reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        else:
            w_q, w_kv = self.qkv.weight.split([c, 2 * c])
            b_q, b_kv = self.qkv.bias.split([c, 2 * c])
            q = F.linear(x, w_q, b_q).reshape(b, n, h, c // h).transpose(1, 2)
            k, v = (
                F.linear(context, w_kv, b_kv)
                .reshape(b, context.shape[1], 2, h, c // h)
                .permute(2, 0, 3, 1, 4)
            )
        if self.impl == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


def set_attention(module: nn.Module, impl: str) -> nn.Module:
    """Switch every :class:`Attention` in ``module`` (encoder, global blocks, head) to ``impl``.

    Args:
        module: Any module holding :class:`Attention` layers.
        impl: "sdpa" or "eager".

    Returns:
        ``module`` (changed in place).
    """
    if impl not in ("sdpa", "eager"):
        raise OptionValueError(f"attention implementation must be 'sdpa' or 'eager', not {impl!r}")
    for m in module.modules():
        if isinstance(m, Attention):
            m.impl = impl
    return module


class LocalMHRA(nn.Module):
    """Local multi-head relation aggregator: BN3d → 1×1×1 reduce → depthwise 3×1×1 → 1×1×1 expand.

    The expanding conv starts at zero so that a freshly inflated CLIP ViT computes exactly the image
    model at initialisation.
    """

    def __init__(self, dim: int, reduction: float = 1.5, kernel: int = 3) -> None:
        super().__init__()
        inner = int(dim // reduction)
        self.norm = nn.BatchNorm3d(dim)
        self.reduce = nn.Conv3d(dim, inner, kernel_size=1)
        self.temporal = nn.Conv3d(inner, inner, (kernel, 1, 1), padding=(kernel // 2, 0, 0), groups=inner)
        self.expand = nn.Conv3d(inner, dim, kernel_size=1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.temporal(self.reduce(self.norm(x))))


class LocalUniBlock(nn.Module):
    """One ViT layer with local MHRA: x+LMHRA1, x+MHSA(LN), x+LMHRA2, x+MLP(LN).

    Tokens are ``[N·T, 1 + H·W, C]`` (frame-major batch); the LMHRA sees patch tokens only, as
    ``[N, C, T, H, W]``, and the class token of each frame passes through untouched.
    """

    def __init__(self, dim: int, heads: int, frames: int, reduction: float, double: bool, drop_path: float):
        super().__init__()
        self.frames = frames
        self.lmhra1 = LocalMHRA(dim, reduction)
        self.lmhra2 = LocalMHRA(dim, reduction) if double else None
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _local(self, x: torch.Tensor, lmhra: LocalMHRA) -> torch.Tensor:
        nt, length, c = x.shape
        t = self.frames
        side = int(round((length - 1) ** 0.5))
        patches = x[:, 1:].reshape(nt // t, t, side, side, c).permute(0, 4, 1, 2, 3)
        patches = patches + self.drop_path(lmhra(patches))
        patches = patches.permute(0, 2, 3, 4, 1).reshape(nt, length - 1, c)
        return torch.cat([x[:, :1], patches], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._local(x, self.lmhra1)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        if self.lmhra2 is not None:
            x = self._local(x, self.lmhra2)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class GlobalUniBlock(nn.Module):
    """The video query cross-attends over every token of the clip, then an MLP (both pre-norm).

    Keys/values get their own LayerNorm (``norm_kv``); the output projection and the last MLP layer
    start at zero, so the query token only moves once training has started.
    """

    def __init__(self, dim: int, heads: int, mlp_factor: float, dropout: float, drop_path: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, round(mlp_factor * dim), dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        nn.init.xavier_uniform_(self.attn.qkv.weight)
        nn.init.zeros_(self.attn.qkv.bias)
        nn.init.zeros_(self.attn.proj.weight)
        nn.init.zeros_(self.attn.proj.bias)
        nn.init.xavier_uniform_(self.mlp.fc1.weight)
        nn.init.zeros_(self.mlp.fc2.weight)
        nn.init.zeros_(self.mlp.fc2.bias)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        query = query + self.drop_path(self.attn(self.norm_q(query), self.norm_kv(tokens)))
        return query + self.drop_path(self.mlp(self.norm2(query)))


class UniFormerV2(nn.Module):
    """UniFormerV2 encoder.

    Args:
        cfg: Architecture.

    Input ``[N, 3, T, H, W]`` (normalised), output of :meth:`forward_features`: the fused video
    feature ``f_g`` ``[N, C]`` and the final patch tokens ``[N, T'·H'·W', C]`` in (time, patch) order.
    """

    def __init__(self, cfg: UniFormerV2Config) -> None:
        super().__init__()
        self.cfg = cfg
        c, p = cfg.width, cfg.patch_size
        if cfg.temporal_downsample:
            self.patch_embed = nn.Conv3d(3, c, (3, p, p), stride=(2, p, p), padding=(1, 0, 0), bias=False)
        else:
            self.patch_embed = nn.Conv3d(3, c, (1, p, p), stride=(1, p, p), bias=False)
        scale = c**-0.5
        self.cls_token = nn.Parameter(scale * torch.randn(c))
        self.pos_embed = nn.Parameter(scale * torch.randn(cfg.grid**2 + 1, c))
        self.norm_pre = nn.LayerNorm(c)
        t = cfg.time_tokens
        b_dpr = _linspace(cfg.backbone_drop_path, cfg.layers)
        self.blocks = nn.ModuleList(
            LocalUniBlock(c, cfg.heads, t, cfg.dw_reduction, cfg.double_lmhra, b_dpr[i])
            for i in range(cfg.layers)
        )
        n_global = len(cfg.return_list)
        if len(cfg.global_mlp_dropout) < n_global:
            raise OptionValueError("global_mlp_dropout needs one value per global block")
        g_dpr = _linspace(cfg.global_drop_path, n_global)
        self.global_query = nn.Parameter(torch.zeros(1, 1, c))
        self.dpe = nn.ModuleList(nn.Conv3d(c, c, 3, padding=1, groups=c) for _ in range(n_global))
        for conv in self.dpe:
            nn.init.zeros_(conv.bias)
        self.global_blocks = nn.ModuleList(
            GlobalUniBlock(c, cfg.global_heads, cfg.mlp_factor, cfg.global_mlp_dropout[j], g_dpr[j])
            for j in range(n_global)
        )
        self.balance = nn.Parameter(torch.zeros(c))
        self.norm_out = nn.LayerNorm(c)
        # Recompute each local block in the backward pass instead of keeping its activations (for
        # large batches); off by default because it costs about one extra forward.
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of the local blocks during training."""
        self.grad_checkpointing = enable

    @property
    def width(self) -> int:
        return self.cfg.width

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """Patch-embed a clip ``[N, 3, T, H, W]`` into tokens ``[N·T', 1 + H'·W', C]``."""
        if self.cfg.onset_relative:
            video = video - video[:, :, :1]
        x = self.patch_embed(video)
        n, c, t, h, w = x.shape
        x = x.permute(0, 2, 3, 4, 1).reshape(n * t, h * w, c)
        cls = self.cls_token.to(x.dtype).expand(n * t, 1, c)
        x = torch.cat([cls, x], dim=1) + self.pos_embed.to(x.dtype)
        return self.norm_pre(x)

    def forward_features(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(f_g [N, C], patch tokens [N, T'·H'·W', C])``."""
        x = self.embed(video)
        nt, length, c = x.shape
        t = self.cfg.time_tokens
        n = nt // t
        side = int(round((length - 1) ** 0.5))
        query = self.global_query.expand(n, 1, c)
        j = 0
        for i, block in enumerate(self.blocks):
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
            if i in self.cfg.return_list:
                tokens = x.reshape(n, t, length, c)
                patches = tokens[:, :, 1:].reshape(n, t, side, side, c).permute(0, 4, 1, 2, 3)
                # Dynamic positional encoding on a copy: the residual stream itself is not changed.
                dpe = self.dpe[j](patches).permute(0, 2, 3, 4, 1).reshape(n, t, length - 1, c)
                tokens = torch.cat([tokens[:, :, :1], tokens[:, :, 1:] + dpe], dim=2)
                query = self.global_blocks[j](query, tokens.reshape(n, t * length, c))
                j += 1
        frames = x.reshape(n, t, length, c)
        weight = torch.sigmoid(self.balance)
        fused = self.norm_out((1 - weight) * query[:, 0] + weight * frames[:, :, 0].mean(1))
        return fused, frames[:, :, 1:].reshape(n, t * (length - 1), c)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """The fused video feature ``f_g`` ``[N, C]``."""
        return self.forward_features(video)[0]
