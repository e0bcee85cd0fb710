"""``mer predict``: a trained model on one's own clips (a video file or a frame folder each).

A clip goes through the same preparation as the model's training data (:func:`mer.protocols.prepare.
_prepare_one` with the recipe recorded in the model's artifact): key frames from the given onset / apex /
offset (or, when no apex is given, the frame that differs most from the first one, reported as estimated),
one face box from the onset frame, crop and resize. The prepared clips become one :class:`ClipSet` and the
estimator's own ``predict`` gives the probabilities. Models with a CLIP branch (MER-CLIP) also report the
AU phrases whose text features lie closest to the clip's video embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mer.errors import BadInputError, OptionValueError
from mer.protocols.clipset import ClipSet
from mer.protocols.layouts import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    FrameError,
    VideoFrame,
    list_frames,
    stream_video,
)
from mer.protocols.prepare import Recipe, _prepare_one
from mer.protocols.sample import Sample

# Phrases scored against the video embedding: every single-AU phrase of Table II.
DEFAULT_TOP_AUS = 3


class NoFaceError(FrameError):
    """The aligner found no face on a clip's onset frame."""


@dataclass(frozen=True)
class _LayoutSpec:
    """The one field of a DatasetSpec that preparation reads: which layout finds the frames."""

    frame_layout: str


@dataclass
class ClipPrediction:
    """One clip's result.

    Attributes:
        clip: The clip path as given.
        onset: First frame used (the clip's own numbering: 0-based for videos, file numbers for folders).
        apex: Apex frame used.
        offset: Last frame used.
        apex_estimated: True when the apex was not given but estimated (largest change from the onset).
        label: Predicted class name.
        probs: Class name → probability (they sum to 1).
        aus: Top AU phrases by text similarity, ``(AU number, phrase, cosine)``; empty for models without
            a CLIP branch.
        face: "none" (whole frame), or the aligner that found the face.
        warnings: What makes this prediction doubtful (a clip shorter than the model's key frames).
    """

    clip: str
    onset: int
    apex: int
    offset: int
    apex_estimated: bool
    label: str
    probs: dict[str, float]
    aus: list[tuple[int, str, float]] = field(default_factory=list)
    face: str = "none"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "label": self.label,
            "probs": self.probs,
            "onset": self.onset,
            "apex": self.apex,
            "offset": self.offset,
            "apex_estimated": self.apex_estimated,
            "aus": [{"au": n, "phrase": p, "score": s} for n, p, s in self.aus],
            "face": self.face,
            "warnings": self.warnings,
        }


@dataclass
class PredictReport:
    """Every clip's prediction, and the clips that were skipped with the reason."""

    model: str
    classes: list[str]
    results: list[ClipPrediction]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def check_any(self) -> None:
        """Raise when no clip could be read (the caller prints the table of reasons first).

        Raises:
            BadInputError: every clip was skipped.
        """
        if not self.results:
            first, why = self.skipped[0] if self.skipped else ("-", "no clip given")
            raise BadInputError(f"no clip could be read: {len(self.skipped)} skipped (first: {first}: {why})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "classes": self.classes,
            "results": [r.to_dict() for r in self.results],
            "skipped": [{"clip": c, "reason": r} for c, r in self.skipped],
        }

    def table(self):
        """One row per clip (skipped clips included, with their reason) as a DataFrame."""
        import pandas as pd

        rows = []
        for r in self.results:
            row = {
                "clip": r.clip,
                "label": r.label,
                **{f"p_{c}": round(p, 6) for c, p in r.probs.items()},
                "onset": r.onset,
                "apex": r.apex,
                "offset": r.offset,
                "apex_estimated": r.apex_estimated,
                "aus": "; ".join(f"AU{n} {p} ({s:.3f})" for n, p, s in r.aus),
                "error": "",
            }
            rows.append(row)
        rows += [{"clip": c, "error": reason} for c, reason in self.skipped]
        return pd.DataFrame(rows, columns=_columns(self.classes))


def _columns(classes: list[str]) -> list[str]:
    return ["clip", "label", *(f"p_{c}" for c in classes), "onset", "apex", "offset", "apex_estimated"] + [
        "aus",
        "error",
    ]


# ---------------------------------------------------------------------------------------- clip input


def is_video(path: Path) -> bool:
    return Path(path).is_file() and Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_frame_folder(path: Path) -> bool:
    """A folder holding at least one image file (a clip), as opposed to a folder of clips."""
    path = Path(path)
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def expand_clips(paths: list[Path]) -> list[Path]:
    """Clips named by ``paths``: a video or frame folder is one clip; any other folder stands for the
    videos and frame folders directly inside it (sorted), so a folder of clips can be given at once.

    Raises:
        FrameError: a path that does not exist, or a folder holding no clip.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FrameError(f"no such clip: {p}")
        if p.is_file() or is_frame_folder(p):
            out.append(p)
            continue
        inner = sorted(c for c in p.iterdir() if is_video(c) or is_frame_folder(c))
        if not inner:
            raise FrameError(f"{p} holds no clip (no image frames, no video {'/'.join(VIDEO_SUFFIXES)})")
        out.extend(inner)
    return out


def clip_frames(clip: Path) -> dict[int, Path | VideoFrame]:
    """Every frame of a clip as ``{frame number: image path}``; a video's frames (numbered from 0) are
    :class:`VideoFrame` handles decoded only when read, so no frame file is written.

    Raises:
        FrameError: unreadable video, not a video or frame folder, or a folder without numbered images.
    """
    clip = Path(clip)
    if clip.is_dir():
        return list_frames(clip)
    if clip.suffix.lower() not in VIDEO_SUFFIXES:
        raise FrameError(f"{clip}: not a video ({', '.join(VIDEO_SUFFIXES)}) nor a frame folder")
    return stream_video(clip)


def resolve_range(
    frames: dict[int, Path], clip: Path, onset: int | None, apex: int | None, offset: int | None
) -> tuple[int, int | None, int]:
    """Onset and offset (default: the clip's first and last frame), apex checked to lie between them.

    Raises:
        ValueError: an index outside the clip, or onset / apex / offset out of order.
    """
    first, last = min(frames), max(frames)
    onset = first if onset is None else onset
    offset = last if offset is None else offset
    for name, value in (("onset", onset), ("apex", apex), ("offset", offset)):
        if value is not None and not first <= value <= last:
            raise OptionValueError(f"{clip}: {name} {value} is outside the clip (frames {first}..{last})")
    if offset < onset:
        raise OptionValueError(f"{clip}: offset {offset} is before onset {onset}")
    if apex is not None and not onset <= apex <= offset:
        raise OptionValueError(f"{clip}: apex {apex} is not between onset {onset} and offset {offset}")
    return onset, apex, offset


def prepare_clip(
    clip: Path, recipe: Recipe, onset: int | None = None, apex: int | None = None, offset: int | None = None
) -> tuple[np.ndarray, Sample]:
    """One clip → its key frames ``[T, S, S, 3]`` uint8, prepared exactly as the training data was.

    Returns the frames and the :class:`Sample` describing them (``extras["apex_estimated"]`` set when the
    apex was estimated).

    Raises:
        FrameError: unreadable video or frames; :class:`NoFaceError` when the aligner finds no face.
        ValueError: indices outside the clip.
    """
    clip = Path(clip)
    frames = clip_frames(clip)
    onset, apex, offset = resolve_range(frames, clip, onset, apex, offset)
    sample = Sample(
        dataset="user",
        subject="",
        sample_id=str(clip),
        source=clip.name,
        onset=onset,
        apex=apex,
        offset=offset,
        emotion="",
    )
    layout = _LayoutSpec("numbered-frames" if clip.is_dir() else "video-stream")
    # A user's clip with no face must not be classified silently on the whole frame.
    strict = replace(recipe, on_align_failure="error")
    try:
        prepared, sample, _ = _prepare_one(sample, clip.parent, layout, strict)  # type: ignore[arg-type]
    except FrameError as e:
        if "no face found" in str(e):
            raise NoFaceError(
                f"{clip}: no face found on the onset frame (face detection '{recipe.align}'); "
                "if the clip is already a face crop, pass --align none"
            ) from None
        raise
    return prepared, sample


# ------------------------------------------------------------------------------------------ the model


def load_model(ref: str, runs_dir: Path = Path("runs"), device: str | None = None):
    """The loaded estimator and artifact config of ``ref`` (``run:ID``, ``hf-hub:…``, ``local-dir:…``,
    a zoo name)."""
    from mer.zoo.artifact import load_artifact

    loaded = load_artifact(ref, runs_dir)
    est = loaded.estimator
    if device is not None and hasattr(est, "model"):
        import torch

        est.device = torch.device(device)
        est.model.to(est.device)
    return loaded


def model_recipe(config, align: str | None = None) -> Recipe:
    """The preparation recipe a model was trained with, with an optional ``--align`` override."""
    recipe = Recipe(**config.recipe) if config.recipe else Recipe()
    return replace(recipe, align=align) if align else recipe


def au_matches(
    est: Any, clips: ClipSet, top: int = DEFAULT_TOP_AUS
) -> list[list[tuple[int, str, float]]] | None:
    """Per clip, the ``top`` single-AU phrases whose text features are closest (cosine) to the clip's
    CLIP embedding; None for a model without a CLIP branch.

    The phrases are Table II's action phrases; each is scored as the mean text feature over the paper's
    templates (prompt ensembling), the way the model met them in training.
    """
    import torch

    model = getattr(est, "model", None)
    visual = getattr(model, "visual", None)
    if model is None or getattr(model, "text", None) is None or getattr(visual, "projector", None) is None:
        return None
    from mer.merclip.prompts import ACTION_PHRASES, TEMPLATES

    numbers = sorted(ACTION_PHRASES)
    texts = [t.format(ACTION_PHRASES[n]) for n in numbers for t in TEMPLATES[:7]]
    model.text.to(est.device)
    feats = torch.nn.functional.normalize(model.text.encode(texts).float(), dim=-1)
    feats = torch.nn.functional.normalize(feats.reshape(len(numbers), 7, -1).mean(1), dim=-1)
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(len(clips)):
            batch = est.batch_fn(clips, np.array([i]), False, est.device)
            emb = model(batch["video"])["embedding"].float()
            sims = (torch.nn.functional.normalize(emb, dim=-1) @ feats.T)[0].cpu()
            best = sims.argsort(descending=True)[:top].tolist()
            out.append([(numbers[j], ACTION_PHRASES[numbers[j]], round(float(sims[j]), 4)) for j in best])
    return out


def predict_clips(
    clips: list[Path],
    model: str,
    *,
    onset: int | None = None,
    apex: int | None = None,
    offset: int | None = None,
    align: str | None = None,
    runs_dir: Path = Path("runs"),
    top_aus: int = DEFAULT_TOP_AUS,
    device: str | None = None,
    on_skip: Any = None,
    on_clip: Any = None,
) -> PredictReport:
    """Predict every clip (folders of clips expanded); clips that cannot be read are skipped and listed.

    Args:
        clips: Videos, frame folders, or folders of them.
        model: ``run:ID``, ``hf-hub:org/name[@rev]``, ``local-dir:PATH`` or a zoo name.
        onset: Onset frame (default: the first frame); applies to every clip.
        apex: Apex frame (default: estimated).
        offset: Offset frame (default: the last frame).
        align: Override the model's face cropping ("none", "detect", "landmarks").
        runs_dir: Where ``run:`` looks.
        top_aus: AU phrases reported per clip (CLIP-aligned models).
        device: Torch device (default the estimator's).
        on_skip: Called with ``(clip, reason)`` for each skipped clip.
        on_clip: Progress, called with ``(clips read, total clips)`` after each clip.

    Raises:
        FrameError, ValueError: when a single clip was given and it cannot be used (the message names it).
    """
    loaded = load_model(model, runs_dir, device)
    cfg = loaded.config
    if cfg.task != "emotion":
        raise OptionValueError(
            f"model {cfg.model} does {cfg.task} detection; mer predict takes emotion models"
        )
    from mer.registrations import load_all
    from mer.zoo.api import MODELS

    load_all()
    if MODELS.get(cfg.model).inputs != "frames":
        raise OptionValueError(
            f"model {cfg.model} reads optical flow; mer predict supports frame-based models"
        )
    recipe = model_recipe(cfg, align)
    paths = expand_clips(clips)
    single = len(paths) == 1 and len(clips) == 1
    arrays, samples, skipped = [], [], []
    for n, p in enumerate(paths, start=1):
        try:
            arr, sample = prepare_clip(p, recipe, onset, apex, offset)
        except (FrameError, ValueError) as e:
            if single:
                raise
            skipped.append((str(p), str(e)))
            if on_skip is not None:
                on_skip(str(p), str(e))
            continue
        finally:
            if on_clip is not None:
                on_clip(n, len(paths))
        arrays.append(arr)
        samples.append(sample)
    report = PredictReport(model=model, classes=list(cfg.classes), results=[], skipped=skipped)
    if not arrays:
        return report
    store = np.stack(arrays)
    clipset = ClipSet(
        store, np.arange(len(store)), samples, np.zeros(len(store), np.int64), tuple(cfg.classes)
    )
    pred = loaded.estimator.predict(clipset)
    matches = au_matches(loaded.estimator, clipset, top_aus) if top_aus > 0 else None
    for i, s in enumerate(samples):
        probs = np.asarray(pred.probs[i], dtype=np.float64)
        report.results.append(
            ClipPrediction(
                clip=s.sample_id,
                onset=s.onset,
                apex=int(s.extras.get("apex_estimated", s.apex)),
                offset=s.offset,
                apex_estimated="apex_estimated" in s.extras,
                label=cfg.classes[int(probs.argmax())],
                probs={c: float(p) for c, p in zip(cfg.classes, probs, strict=True)},
                aus=matches[i] if matches else [],
                face=recipe.align,
                warnings=short_clip_warning(s, recipe),
            )
        )
    return report


def short_clip_warning(sample: Sample, recipe: Recipe) -> list[str]:
    """A warning when the clip spans fewer frames than the model's key frames (frames get repeated, and
    a micro-expression cannot be told from a still face), else nothing."""
    span = sample.offset - sample.onset + 1
    if span >= max(3, recipe.frames):
        return []
    return [
        f"{sample.sample_id}: only {span} frame(s) from onset to offset; the model reads {recipe.frames} "
        "key frames of a clip, so this prediction is unreliable"
    ]
