"""Key converters: reference UniFormerV2 / MER-CLIP names → mer module names, and CLIP 2D → 3D inflation.

The reference implementation (mmaction2's ``UniFormerV2``, the MER-CLIP authors' variant with the
visual projector, and their ``TransfClsHead``) names tensors after OpenAI CLIP (``conv1``,
``transformer.resblocks.3.attn.in_proj_weight``, ``transformer.dec.0.ln_3``...). mer's modules use
descriptive names; these functions rename (and, for the projector, transpose) every tensor, and report
anything they do not understand instead of dropping it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

from mer.errors import InputError

Tensor = torch.Tensor

# (pattern, replacement) applied with re.fullmatch to reference encoder keys (prefix already stripped).
_ENCODER_RULES: list[tuple[str, str]] = [
    (r"conv1\.weight", "patch_embed.weight"),
    (r"class_embedding", "cls_token"),
    (r"positional_embedding", "pos_embed"),
    (r"ln_pre\.(weight|bias)", r"norm_pre.\1"),
    (r"transformer\.temporal_cls_token", "global_query"),
    (r"transformer\.balance", "balance"),
    (r"transformer\.norm\.(weight|bias)", r"norm_out.\1"),
    (r"transformer\.dpe\.(\d+)\.(weight|bias)", r"dpe.\1.\2"),
    # Local MHRA: Sequential(BN3d, reduce, depthwise temporal, expand).
    (r"transformer\.resblocks\.(\d+)\.(lmhra[12])\.pos_embed\.0\.(\w+)", r"blocks.\1.\2.norm.\3"),
    (r"transformer\.resblocks\.(\d+)\.(lmhra[12])\.pos_embed\.1\.(weight|bias)", r"blocks.\1.\2.reduce.\3"),
    (r"transformer\.resblocks\.(\d+)\.(lmhra[12])\.pos_embed\.2\.(weight|bias)", r"blocks.\1.\2.temporal.\3"),
    (r"transformer\.resblocks\.(\d+)\.(lmhra[12])\.pos_embed\.3\.(weight|bias)", r"blocks.\1.\2.expand.\3"),
    (r"transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)", r"blocks.\1.attn.qkv.\2"),
    (r"transformer\.resblocks\.(\d+)\.attn\.out_proj\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"transformer\.resblocks\.(\d+)\.ln_1\.(weight|bias)", r"blocks.\1.norm1.\2"),
    (r"transformer\.resblocks\.(\d+)\.ln_2\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"transformer\.resblocks\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
    (r"transformer\.resblocks\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
    # Global UniBlocks ("Extractor"): ln_1 normalises the query, ln_3 the tokens, ln_2 precedes the MLP.
    (r"transformer\.dec\.(\d+)\.attn\.in_proj_(weight|bias)", r"global_blocks.\1.attn.qkv.\2"),
    (r"transformer\.dec\.(\d+)\.attn\.out_proj\.(weight|bias)", r"global_blocks.\1.attn.proj.\2"),
    (r"transformer\.dec\.(\d+)\.ln_1\.(weight|bias)", r"global_blocks.\1.norm_q.\2"),
    (r"transformer\.dec\.(\d+)\.ln_3\.(weight|bias)", r"global_blocks.\1.norm_kv.\2"),
    (r"transformer\.dec\.(\d+)\.ln_2\.(weight|bias)", r"global_blocks.\1.norm2.\2"),
    (r"transformer\.dec\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"global_blocks.\1.mlp.fc1.\2"),
    (r"transformer\.dec\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"global_blocks.\1.mlp.fc2.\2"),
]

# The MER-CLIP visual extras (``UniFormerV2_clip_extramlp``), relative to :class:`MerClipVisual`.
_VISUAL_EXTRA_RULES: list[tuple[str, str]] = [
    (r"proj", "projector.proj.weight"),  # stored [in, out]: transposed below
    (r"ln_post1\.(weight|bias)", r"projector.norm.\1"),
    (r"to_cls_decoder\.weight", "token_proj.proj.weight"),
    (r"ln_final\.(weight|bias)", r"token_proj.norm.\1"),
]

# ``TransfClsHead`` → :class:`~mer.merclip.head.EmotionTransformerHead`.
_HEAD_RULES: list[tuple[str, str]] = [
    (r"blocks\.(\d+)\.norm\.(weight|bias)", r"blocks.\1.norm1.\2"),
    (r"blocks\.(\d+)\.attn\.to_qkv\.(weight|bias)", r"blocks.\1.attn.qkv.\2"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"blocks\.(\d+)\.norm_ffn\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"blocks\.(\d+)\.ffn\.net\.0\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
    (r"blocks\.(\d+)\.ffn\.net\.3\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
    (r"norm\.(weight|bias)", r"norm.\1"),
    (r"fc_cls\.(weight|bias)", r"fc.\1"),
]

_COMPILED: dict[int, list[tuple[re.Pattern[str], str]]] = {}


def _rename(key: str, rules: list[tuple[str, str]]) -> str | None:
    compiled = _COMPILED.setdefault(id(rules), [(re.compile(p), r) for p, r in rules])
    for pattern, repl in compiled:
        if pattern.fullmatch(key):
            return pattern.sub(repl, key)
    return None


class ConversionError(InputError, KeyError):
    """Keys that a converter could not place."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _convert(
    state: Mapping[str, Tensor],
    rules: list[tuple[str, str]],
    prefix: str,
    strict: bool,
    fix: Callable[[str, Tensor], Tensor] | None = None,
) -> tuple[dict[str, Tensor], list[str]]:
    out: dict[str, Tensor] = {}
    unused: list[str] = []
    for key, value in state.items():
        new = _rename(key, rules)
        if new is None:
            unused.append(key)
            continue
        out[prefix + new] = fix(new, value) if fix else value
    if strict and unused:
        raise ConversionError(f"reference keys with no place in mer's module: {', '.join(sorted(unused))}")
    return out, unused


def strip_prefix(state: Mapping[str, Tensor], prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """Drop the first matching prefix (``backbone.``, ``vision_encoder.``...) from each key."""
    out = {}
    for key, value in state.items():
        for p in prefixes:
            if key.startswith(p):
                key = key[len(p) :]
                break
        out[key] = value
    return out


def convert_uniformerv2(
    state: Mapping[str, Tensor], *, prefix: str = "", strict: bool = True
) -> tuple[dict[str, Tensor], list[str]]:
    """Rename a reference UniFormerV2 backbone state dict to :class:`~mer.merclip.uniformerv2.UniFormerV2`.

    Args:
        state: Reference keys (``conv1.weight``, ``transformer.resblocks.0.lmhra1.pos_embed.0.weight``...),
            without a ``backbone.`` prefix (use :func:`strip_prefix` first).
        prefix: Prepended to every converted key (e.g. ``"encoder."``).
        strict: Raise :class:`ConversionError` when a key has no place.

    Returns:
        ``(converted, unused)``: the renamed tensors and the reference keys that were not used.
    """
    return _convert(state, _ENCODER_RULES, prefix, strict)


def convert_merclip_visual(
    state: Mapping[str, Tensor], *, prefix: str = "", strict: bool = True
) -> tuple[dict[str, Tensor], list[str]]:
    """Rename the authors' MER-CLIP vision encoder (backbone + ``proj``/``ln_post1`` +
    ``to_cls_decoder``/``ln_final``) to :class:`~mer.merclip.model.MerClipVisual`."""
    enc, rest = convert_uniformerv2(state, prefix=prefix + "encoder.", strict=False)

    def transpose_proj(name: str, value: Tensor) -> Tensor:
        # The reference keeps ``proj`` as an [in, out] matrix used as x @ proj; nn.Linear stores [out, in].
        return value.t().contiguous() if name == "projector.proj.weight" else value

    extra, unused = _convert({k: state[k] for k in rest}, _VISUAL_EXTRA_RULES, prefix, strict, transpose_proj)
    return {**enc, **extra}, unused


def convert_head(
    state: Mapping[str, Tensor], *, prefix: str = "", strict: bool = True
) -> tuple[dict[str, Tensor], list[str]]:
    """Rename the authors' ``TransfClsHead`` to :class:`~mer.merclip.head.EmotionTransformerHead`."""
    return _convert(state, _HEAD_RULES, prefix, strict)


def convert_merclip_checkpoint(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Convert a whole MER-CLIP checkpoint (``vision_encoder.*``, ``cls_head.*``, text keys...) to
    :class:`~mer.merclip.model.MerClip` keys (``visual.*``, ``head.*``, ``logit_scale``).

    Text-tower keys are reported as unused: mer's text tower is the frozen open_clip one.
    """
    visual = {k[len("vision_encoder.") :]: v for k, v in state.items() if k.startswith("vision_encoder.")}
    head = {k[len("cls_head.") :]: v for k, v in state.items() if k.startswith("cls_head.")}
    out, unused_v = convert_merclip_visual(visual, prefix="visual.", strict=False)
    h, unused_h = convert_head(head, prefix="head.", strict=False)
    out.update(h)
    unused = [f"vision_encoder.{k}" for k in unused_v] + [f"cls_head.{k}" for k in unused_h]
    for key, value in state.items():
        if key.startswith(("vision_encoder.", "cls_head.")):
            continue
        if key == "logit_scale":
            out["logit_scale"] = value.reshape(())
        else:
            unused.append(key)
    return out, unused


def inflate_clip_visual(clip_visual: Mapping[str, Tensor], frames_kernel: int = 3) -> dict[str, Tensor]:
    """CLIP ViT image weights (open_clip ``visual.*`` names, prefix stripped) → UniFormerV2 names.

    The 2D patch embedding ``[C, 3, p, p]`` becomes ``[C, 3, k, p, p]`` with the image kernel at the
    centre time step and zeros elsewhere, so that a static clip gives the image model's tokens. Only the
    tensors UniFormerV2 shares with CLIP are returned (``ln_post``/``proj`` of the image model are not
    used); the local MHRA and global blocks keep their own initialisation.
    """
    out: dict[str, Tensor] = {}
    for key, value in clip_visual.items():
        if key == "conv1.weight" and value.dim() == 4:
            w3 = value.new_zeros(value.shape[0], value.shape[1], frames_kernel, *value.shape[2:])
            w3[:, :, frames_kernel // 2] = value
            value = w3
        if key.startswith("transformer.resblocks.") and ".ls_" in key:
            continue
        new = _rename(key, _ENCODER_RULES)
        if new is not None and not new.startswith(("global_", "dpe.", "balance", "norm_out")):
            out[new] = value
    return out


# The source model's own classification head (``transformer.proj`` of a UniFormerV2 release: dropout +
# linear over the K400 / K710 / SSv2 classes): known, never used (the emotion head is new).
SOURCE_HEAD = re.compile(r"transformer\.proj\.\d+\.(weight|bias)")


def adapt_uniformerv2_layout(
    state: Mapping[str, Tensor], target: Mapping[str, Tensor], prefix: str = ""
) -> tuple[dict[str, Tensor], list[str]]:
    """Fit a converted UniFormerV2 state dict (mer names under ``prefix``) to a target of another layout.

    A release trained on 8 frames (``k400+k710_uniformerv2_b16_8x224``: no temporal downsampling, no
    local MHRA, 4 global blocks after layers 8–11) differs from mer's 16-frame B/16 (patch embedding of
    kernel 3 / stride 2 in time, double local MHRA, 8 global blocks after layers 4–11). Two rules, each
    said in the returned notes:

    - **Patch embedding, temporal kernel 1 → k.** The image-like kernel goes to the centre tap, zeros on
      the others: with stride 2 over 16 input frames the encoder sees frames 0, 2, …, 14 exactly as the
      8-frame model saw its 8 frames, so the 8 time tokens per clip are unchanged (no interpolation).
    - **Fewer global blocks than the target.** Global block i of n (and its positional conv) becomes
      block i + N − n of the target's N: the source attaches its blocks to its last layers, and so does
      the target's ``return_list``; the target's first N − n blocks keep their initialisation.

    Anything else of another shape is left as it is (the caller refuses it, naming the keys); target
    tensors the source lacks (the local MHRA of a release without it) keep their initialisation.

    Args:
        state: Converted tensors (``{prefix}patch_embed.weight``, ``{prefix}global_blocks.0...``).
        target: The target's tensors (or meta tensors: only shapes are read).
        prefix: Key prefix of the encoder in both (``"visual.encoder."``).

    Returns:
        ``(adapted, notes)``.

    Raises:
        ConversionError: the source has more global blocks than the target.
    """
    notes: list[str] = []
    block = re.compile(re.escape(prefix) + r"(global_blocks|dpe)\.(\d+)\.(.+)")

    def count(keys) -> int:
        found = {int(m.group(2)) for k in keys if (m := block.fullmatch(k)) and m.group(1) == "global_blocks"}
        return max(found) + 1 if found else 0

    n_src, n_tgt = count(state), count(target)
    if n_src > n_tgt:
        extra = sorted(k for k in state if (m := block.fullmatch(k)) and int(m.group(2)) >= n_tgt)
        raise ConversionError(
            f"the checkpoint has {n_src} global blocks, the model {n_tgt}: "
            f"no place for {', '.join(extra[:6])}" + (f" … (+{len(extra) - 6})" if len(extra) > 6 else "")
        )
    shift = n_tgt - n_src if 0 < n_src < n_tgt else 0
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        m = block.fullmatch(key)
        if shift and m:
            key = f"{prefix}{m.group(1)}.{int(m.group(2)) + shift}.{m.group(3)}"
        out[key] = value
    if shift:

        def span(a: int, b: int) -> str:
            return f"block {a}" if a == b else f"blocks {a}–{b}"

        notes.append(
            f"global blocks: the checkpoint's {n_src} become the model's {span(shift, n_tgt - 1)} "
            f"(both attach them to the last layers); {span(0, shift - 1)} keep their initialisation"
        )
    patch = prefix + "patch_embed.weight"
    if patch in out and patch in target:
        src, tgt = out[patch], target[patch]
        if (
            src.dim() == 5
            and tgt.dim() == 5
            and src.shape[2] == 1 < tgt.shape[2]
            and (src.shape[:2] + src.shape[3:] == tgt.shape[:2] + tgt.shape[3:])
        ):
            k = tgt.shape[2]
            inflated = src.new_zeros(*src.shape[:2], k, *src.shape[3:])
            inflated[:, :, k // 2] = src[:, :, 0]
            out[patch] = inflated
            notes.append(
                f"patch embedding: temporal kernel 1 → {k}, the checkpoint's kernel at the centre tap and "
                "zeros elsewhere (centre inflation, no interpolation): with temporal stride 2 the encoder "
                "sees frames 0, 2, 4, … as the 8-frame model saw its frames (16 frames in → the same "
                "8 time tokens)"
            )
    lmhra = [k for k in target if ".lmhra" in k and k.startswith(prefix)]
    if lmhra and not any(".lmhra" in k for k in out):
        notes.append(
            "local MHRA: not in the checkpoint (a release without it); the model's keep their "
            "initialisation (the last conv is zero, so each starts as the identity)"
        )
    return out, notes
