"""Safe reading of external checkpoints and their conversion to mer's key names, with a report.

Every checkpoint is read as safetensors or with ``torch.load(weights_only=True)``: a pickle that needs
code to load is refused (:class:`UnsafeCheckpointError`), never executed. Converters:

- ``uniformerv2``: a reference UniFormerV2 backbone (``.pth`` / ``.pyth``, mmaction2 or the official
  release; ``backbone.`` / ``module.`` prefixes stripped) or a whole reference MER-CLIP checkpoint
  (``vision_encoder.*``) → :class:`~mer.merclip.model.MerClip` names (``visual.*``). The key rules live in
  :mod:`mer.merclip.convert`; this module adds reading and reporting.
- ``viclip-text``: the ViCLIP-B text tower (``text_encoder.*``, CLIP-style names) → an open_clip text
  tower (``token_embedding``, ``transformer.resblocks.*``, ``ln_final``, ``text_projection``).
- ``open_clip-text`` / ``open_clip-visual``: the text tower of an open_clip checkpoint as is, or its image
  tower inflated to 3D UniFormerV2 weights (``visual.encoder.*``).

Each conversion reports the source keys it did not use, the target keys nothing filled, and shape
mismatches (against the target module built on the meta device, so no memory is spent).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mer.errors import BadInputError, InputError, MissingInputError, OptionValueError

Tensor = torch.Tensor
TORCH_SUFFIXES = (".pth", ".pt", ".pyth", ".bin", ".ckpt")
KINDS = ("uniformerv2", "viclip-text", "open_clip-text", "open_clip-visual")
_WRAPPERS = ("state_dict", "model", "module", "model_state")


class UnsafeCheckpointError(InputError, ValueError):
    """A checkpoint that cannot be read without running pickled code; mer refuses it."""


# ------------------------------------------------------------------------------------------ reading


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], list[str]]:
    """Tensors of a checkpoint file and the names of non-tensor entries it also held (epoch, meta...).

    Raises:
        UnsafeCheckpointError: a torch file that needs code (custom classes) to unpickle.
        ValueError: unreadable or truncated file, or an unsupported suffix.
        FileNotFoundError: no such file.
    """
    state, skipped, _ = read_checkpoint_wrapped(path)
    return state, skipped


def read_checkpoint_wrapped(path: str | Path) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """:func:`read_checkpoint` plus the wrapper keys the tensors sat under (``["model_state"]`` for a
    slowfast ``.pyth``, ``["state_dict"]`` for mmaction2, ``[]`` for a bare state dict).

    Raises:
        UnsafeCheckpointError: a torch file that needs code (custom classes) to unpickle.
        ValueError: unreadable or truncated file, or an unsupported suffix.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), [], []
        except (SafetensorError, OSError) as e:
            raise BadInputError(
                f"{path}: not a readable safetensors file ({e}); truncated or not safetensors"
            ) from e
    if path.suffix not in TORCH_SUFFIXES:
        raise BadInputError(
            f"{path}: unsupported checkpoint type {path.suffix!r} (.safetensors, {', '.join(TORCH_SUFFIXES)})"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsafeCheckpointError(
            f"{path}: refused: this checkpoint is a pickle that needs code to load ({first}). mer reads only "
            "safetensors or tensors-only torch files (torch.load(weights_only=True)), because unpickling can "
            "run arbitrary code. If you trust its source, re-save its tensors with "
            "`torch.save(ckpt['state_dict'], 'clean.pth')` in the environment that made it, or convert it to "
            "safetensors."
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        raise BadInputError(f"{path}: cannot be read as a torch checkpoint ({e}); truncated?") from e
    return _tensors(obj, path)


def load_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """:func:`read_checkpoint` without the list of skipped entries."""
    return read_checkpoint(path)[0]


def _tensors(obj: object, path: Path) -> tuple[dict[str, Tensor], list[str], list[str]]:
    if isinstance(obj, Mapping):
        for key in _WRAPPERS:  # {"state_dict": {...}, "epoch": 3, "meta": {...}}
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, Tensor) for v in inner.values()):
                skipped = [k for k in obj if k != key]
                state, more, wrappers = _tensors(inner, path)
                return state, skipped + more, [key, *wrappers]
        state = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
        if state:
            return state, [str(k) for k, v in obj.items() if not isinstance(v, Tensor)], []
    raise BadInputError(f"{path}: holds no tensors by name (a {type(obj).__name__}); expected a state dict")


# --------------------------------------------------------------------------------------- reporting


@dataclass
class ConversionReport:
    """A converted state dict and what did not fit.

    Attributes:
        kind: Converter used.
        converted: Tensors under mer / open_clip names.
        unused: Source keys that have no place in the target (dropped).
        missing: Target keys no source tensor filled (they keep their initialisation).
        mismatched: ``"key: source shape vs target shape"`` for tensors of the wrong shape (dropped).
        skipped: Non-tensor entries of the file (epoch counters, optimiser metadata...).
        dropped: Source tensors known and deliberately not used (the source's classification head,
            a MER-CLIP checkpoint's text tower).
        notes: What the conversion found and how it adapted the layout (said on screen, recorded).
    """

    kind: str
    converted: dict[str, Tensor]
    unused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def refuse_unmappable(self, source: str = "checkpoint") -> None:
        """Raise when a source tensor has no place or the wrong shape (the keys are named)."""
        from mer.merclip.convert import ConversionError

        problems = []
        if self.unused:
            problems.append(f"{len(self.unused)} tensors with no place in mer's model: " + _head(self.unused))
        if self.mismatched:
            problems.append(f"{len(self.mismatched)} of another shape: " + _head(self.mismatched))
        if problems:
            raise ConversionError(f"{source}: cannot convert ({self.kind}): " + "; ".join(problems))

    def summary(self, limit: int = 8) -> str:
        """A few lines for humans."""
        lines = [f"{self.kind}: {len(self.converted)} tensors converted"]
        lines += [f"  {note}" for note in self.notes]
        for label, items in (
            ("missing (keep their initialisation)", self.missing),
            ("known and not used", self.dropped),
            ("unexpected (no place, dropped)", self.unused),
            ("shape mismatch (dropped)", self.mismatched),
            ("non-tensor entries skipped", self.skipped),
        ):
            if items:
                lines.append(f"  {len(items)} {label}: {_head(items, limit)}")
        return "\n".join(lines)

    def record(self) -> dict[str, object]:
        """JSON-ready facts of the conversion (for run.json and ``--dry-run``)."""
        return {
            "converter": self.kind,
            "converted": len(self.converted),
            "notes": list(self.notes),
            "missing": len(self.missing),
            "dropped": list(self.dropped),
            "skipped": list(self.skipped),
        }


def _head(items: list[str], limit: int = 8) -> str:
    more = f" … (+{len(items) - limit})" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_against(
    report: ConversionReport, target: Mapping[str, Tensor], scope: tuple[str, ...] = ("",)
) -> None:
    """Fill ``missing`` / ``mismatched`` of ``report`` against a target state dict (shapes only).

    Converted keys under ``scope`` prefixes that the target lacks move to ``unused``.
    """
    for key in list(report.converted):
        if not key.startswith(scope):
            continue
        if key not in target:
            report.unused.append(key)
            del report.converted[key]
        elif tuple(report.converted[key].shape) != tuple(target[key].shape):
            report.mismatched.append(
                f"{key}: {tuple(report.converted[key].shape)} vs {tuple(target[key].shape)}"
            )
            del report.converted[key]
    report.missing = sorted(k for k in target if k not in report.converted)


def _meta_state(build) -> dict[str, Tensor]:
    with torch.device("meta"):
        return dict(build().state_dict())


# -------------------------------------------------------------------------------------- converters


def _merclip_visual_target(size: str) -> dict[str, Tensor]:
    from mer.merclip.estimator import Variant, model_config
    from mer.merclip.model import MerClipVisual

    cfg = model_config(size, Variant())
    state = _meta_state(lambda: MerClipVisual(cfg.encoder, cfg.embed_dim, cfg.head_dim))
    return {f"visual.{k}": v for k, v in state.items()}


def convert_uniformerv2_state(
    state: Mapping[str, Tensor], size: str = "base", target: Mapping[str, Tensor] | None = None
) -> ConversionReport:
    """Reference UniFormerV2 or MER-CLIP checkpoint → :class:`~mer.merclip.model.MerClip` names.

    A UniFormerV2 release (slowfast ``.pyth`` or mmaction2 ``.pth``; ``backbone.`` / ``module.``
    prefixes stripped) is fitted to the model's layout (:func:`~mer.merclip.convert.adapt_uniformerv2_layout`:
    8-frame patch embedding inflated, global blocks re-indexed); its own classification head is dropped.

    Args:
        state: The checkpoint's tensors (wrapper already removed by :func:`read_checkpoint`).
        size: Model size whose visual side is the target (when ``target`` is None).
        target: The target's ``visual.*`` tensors (shapes only), e.g. the model being initialised.
    """
    from mer.merclip.convert import (
        SOURCE_HEAD,
        adapt_uniformerv2_layout,
        convert_merclip_checkpoint,
        convert_uniformerv2,
        strip_prefix,
    )

    target = dict(target) if target is not None else _merclip_visual_target(size)
    state = strip_prefix(state, ("module.",))
    notes: list[str] = []
    dropped: list[str] = []
    if any(k.startswith("vision_encoder.") for k in state):
        converted, unused = convert_merclip_checkpoint(state)
        notes.append("a MER-CLIP checkpoint: its vision encoder and projector (vision_encoder.*)")
        dropped = [k for k in unused if not k.startswith(("vision_encoder.", "cls_head."))]
        unused = [k for k in unused if k.startswith(("vision_encoder.", "cls_head."))]
    else:
        prefixed = [k for k in state if k.startswith("backbone.")]
        state = strip_prefix(state, ("backbone.",))
        dropped = [k for k in state if SOURCE_HEAD.fullmatch(k)]
        body = {k: v for k, v in state.items() if k not in dropped}
        converted, unused = convert_uniformerv2(body, prefix="visual.encoder.", strict=False)
        notes.append(
            f"a UniFormerV2 backbone: {len(body)} tensors"
            + (f", prefix 'backbone.' on {len(prefixed)} keys" if prefixed else "")
            + (f"; its own classification head ({', '.join(dropped)}) is not used" if dropped else "")
        )
        converted, adapted = adapt_uniformerv2_layout(converted, target, prefix="visual.encoder.")
        notes += adapted
    report = ConversionReport("uniformerv2", dict(converted), list(unused), dropped=dropped, notes=notes)
    check_against(report, target, scope=("visual.",))
    return report


_TEXT_KEY = re.compile(
    r"(token_embedding\.weight|positional_embedding|text_projection|ln_final\.(weight|bias)"
    r"|transformer\.resblocks\.\d+\.(attn\.in_proj_(weight|bias)|attn\.out_proj\.(weight|bias)"
    r"|ln_[12]\.(weight|bias)|mlp\.c_(fc|proj)\.(weight|bias)))"
)


def _open_clip_text_target(model: str = "ViT-B-16") -> dict[str, Tensor]:
    import open_clip
    from open_clip.model import CLIP

    cfg = open_clip.get_model_config(model)
    state = _meta_state(lambda: CLIP(**cfg, quick_gelu=True))
    return {k: v for k, v in state.items() if _TEXT_KEY.fullmatch(k)}


def convert_text_state(state: Mapping[str, Tensor], kind: str, model: str = "ViT-B-16") -> ConversionReport:
    """ViCLIP-B (``text_encoder.*``) or open_clip text tower → open_clip text-tower names."""
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    # A whole ViCLIP checkpoint holds the video tower too: only its ``text_encoder.*`` part is the text tower.
    wrapped = kind == "viclip-text" and any(k.startswith("text_encoder.") for k in state)
    converted, unused = {}, []
    for key, value in state.items():
        name = key[len("text_encoder.") :] if wrapped and key.startswith("text_encoder.") else key
        if (not wrapped or key.startswith("text_encoder.")) and _TEXT_KEY.fullmatch(name):
            converted[name] = value
        else:
            unused.append(key)
    report = ConversionReport(kind, converted, unused)
    target = _open_clip_text_target(model)
    pos = converted.get("positional_embedding")
    want = target["positional_embedding"].shape
    short = pos is not None and pos.dim() == 2 and pos.shape[0] < want[0] and pos.shape[1] == want[1]
    if kind == "viclip-text" and short:
        # ViCLIP's table has 32 positions; the authors zero-pad it to CLIP's 77 (SPEC A.3, text side).
        converted["positional_embedding"] = torch.cat([pos, pos.new_zeros(want[0] - pos.shape[0], want[1])])
        report.notes.append(f"positional embedding: {pos.shape[0]} positions zero-padded to {want[0]}")
    check_against(report, target)
    return report


def convert_open_clip_visual_state(state: Mapping[str, Tensor], size: str = "base") -> ConversionReport:
    """open_clip image tower (``visual.*``) → UniFormerV2 weights inflated to 3D (``visual.encoder.*``)."""
    from mer.merclip.convert import inflate_clip_visual

    visual = {k[len("visual.") :]: v for k, v in state.items() if k.startswith("visual.")}
    inflated = inflate_clip_visual(visual)
    converted = {f"visual.encoder.{k}": v for k, v in inflated.items()}
    unused = [k for k in state if not k.startswith("visual.")]
    report = ConversionReport("open_clip-visual", converted, unused)
    target = {k: v for k, v in _merclip_visual_target(size).items() if k.startswith("visual.encoder.")}
    check_against(report, target, scope=("visual.encoder.",))
    return report


def convert_checkpoint(path: str | Path, kind: str, size: str = "base") -> ConversionReport:
    """Read ``path`` safely and convert it with converter ``kind`` (:data:`KINDS`)."""
    if kind not in KINDS:
        raise OptionValueError(f"unknown converter {kind!r}; converters: {', '.join(KINDS)}")
    state, skipped, wrappers = read_checkpoint_wrapped(path)
    if kind == "uniformerv2":
        report = convert_uniformerv2_state(state, size)
    elif kind == "open_clip-visual":
        report = convert_open_clip_visual_state(state, size)
    else:
        report = convert_text_state(state, kind)
    return annotate(report, skipped, wrappers)


def annotate(report: ConversionReport, skipped: list[str], wrappers: list[str]) -> ConversionReport:
    """Add what reading found (non-tensor entries, the wrapper key) to ``report``."""
    report.skipped = skipped
    if wrappers:
        report.notes.insert(0, f"tensors under the wrapper key {'.'.join(wrappers)!r}")
    return report


def save_converted(report: ConversionReport, out: str | Path) -> Path:
    """Write the converted tensors as safetensors (usable with ``--init`` for vision weights)."""
    from safetensors.torch import save_file

    from mer.protocols.io import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        save_file({k: v.detach().contiguous() for k, v in report.converted.items()}, str(tmp))
    return out
