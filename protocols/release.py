"""Which release of a dataset a root holds (raw frames or cropped faces) and the preparation it declares.

The real datasets ship both ways: CASME II as ``CASME2_RAW_selected`` (640×480 frames) and ``Cropped``
(faces), SAMM as ``SAMM`` (2040×1088) and cropped faces, CAS(ME)³ Part A as 1280×720 frames. Raw frames
need the face cropped (landmark alignment, falling back to the Haar detector), cropped faces keep the
frame. ``mer data add`` recognises the release (folder names first, then the size of one frame) and
records it with its evidence; preparation starts from the release's defaults (SPEC decisions table,
"face crop").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mer.protocols.layouts import IMAGE_SUFFIXES, VIDEO_SUFFIXES

RAW, CROPPED, AS_IS = "raw", "cropped", "as-is"
KINDS = (RAW, CROPPED)

# Preparation each release declares (the first layer of the resolution; see mer.protocols.plan).
PREPARATION: dict[str, dict[str, Any]] = {RAW: {"align": "landmarks"}, CROPPED: {"align": "none"}, AS_IS: {}}


@dataclass(frozen=True)
class ReleaseRule:
    """How to tell a dataset's raw release from its cropped one.

    Attributes:
        raw_folders: Sub-folder names (of the root, or the root's own name) of the raw release.
        cropped_folders: The same for the cropped release.
        raw_sizes: Frame sizes ``(width, height)`` of the raw recordings.
    """

    raw_folders: tuple[str, ...] = ()
    cropped_folders: tuple[str, ...] = ()
    raw_sizes: tuple[tuple[int, int], ...] = ()


# Datasets not listed here (SynthME, user datasets) are taken as they are ("as-is": no face crop).
RULES: dict[str, ReleaseRule] = {
    "casme2": ReleaseRule(
        ("CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW"),
        ("Cropped", "CASME2_Cropped", "cropped"),
        ((640, 480),),
    ),
    "samm": ReleaseRule(("SAMM",), ("SAMM_CROP", "SAMM_cropped", "cropped"), ((2040, 1088),)),
    "casme3": ReleaseRule(("part_A", "Part_A"), (), ((1280, 720),)),
    "dfme": ReleaseRule(),
    "megc2019": ReleaseRule(),
}

# A frame whose short side is below this and whose shape is near square is taken for a face crop.
CROP_MAX_SHORT = 480


@dataclass(frozen=True)
class Release:
    """What ``mer data add`` found: ``kind`` (raw / cropped / as-is) and why."""

    kind: str
    evidence: str

    def preparation(self) -> dict[str, Any]:
        return dict(PREPARATION[self.kind])


def _first_frame(root: Path, max_depth: int = 5) -> Path | None:
    """The first image (or video) under ``root`` in sorted order, looking at most ``max_depth`` deep."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if len(Path(dirpath).relative_to(root).parts) >= max_depth:
            dirnames[:] = []
        for name in sorted(filenames):
            suffix = Path(name).suffix.lower()
            if suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES:
                return Path(dirpath) / name
    return None


def _frame_size(path: Path) -> tuple[int, int] | None:
    import cv2

    if path.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        cap.release()
        return size if min(size) > 0 else None
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if img is None else (img.shape[1], img.shape[0])


def detect_release(dataset: str, root: Path) -> Release:
    """Recognise the release of ``dataset`` under ``root``.

    Folder names decide first, in the order the frame layouts search them (so the release found is the
    one preparation will read); otherwise the size of the first frame under the root: a known raw size,
    or a small near-square frame (a face crop). A dataset without rules is taken as it is.
    """
    rule = RULES.get(dataset)
    if rule is None:
        return Release(AS_IS, f"{dataset} has no raw/cropped releases: frames used as they are")
    root = Path(root)
    names = [(n, RAW) for n in rule.raw_folders] + [(n, CROPPED) for n in rule.cropped_folders]
    for name, kind in names:
        if root.name.lower() == name.lower():
            return Release(kind, f"the root folder is named {root.name}")
    for name, kind in names:
        if (root / name).is_dir():
            return Release(kind, f"folder {name}/ under the root")
    frame = _first_frame(root)
    size = _frame_size(frame) if frame is not None else None
    if size is None:
        return Release(RAW, "no frame found under the root to look at; assumed raw frames (face crop on)")
    w, h = size
    rel = frame.relative_to(root)
    if size in rule.raw_sizes:
        return Release(RAW, f"frame {rel} is {w}×{h}, the raw recording size")
    if min(w, h) < CROP_MAX_SHORT and 0.6 <= w / h <= 1.4:
        return Release(CROPPED, f"frame {rel} is {w}×{h}, a face crop")
    return Release(RAW, f"frame {rel} is {w}×{h}, not a face crop")


def recorded_release(dataset: str) -> tuple[Release, bool]:
    """The release recorded by ``mer data add`` (or recognised now for an older entry).

    Returns:
        The release and whether the dataset is added at all. A dataset never added is assumed raw for
        the rule datasets (what a fresh download is), so that ``--dry-run`` shows the face crop it will do.
    """
    from mer.protocols.config import dataset_entry

    entry = dataset_entry(dataset)
    if entry is None:
        if dataset in RULES:
            return Release(RAW, f"{dataset} is not added yet; assumed raw frames (face crop on)"), False
        return Release(AS_IS, f"{dataset} is not added yet; frames used as they are"), False
    if entry.get("release") in (*KINDS, AS_IS):
        return Release(entry["release"], entry.get("release_evidence", "recorded by `mer data add`")), True
    return detect_release(dataset, Path(entry["root"])), True
