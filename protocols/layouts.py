"""Frame layouts: where a sample's frames are, and reading them.

A layout maps a :class:`~mer.protocols.sample.Sample` to its frames as ``{frame number: path}``.
Frame numbers come from the file names (the last integer in the stem: ``img46.jpg`` → 46,
``006_05562.jpg`` → 5562), and are always sorted numerically, never by directory order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from mer.protocols.sample import Sample
from mer.registry import Registry

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")

LayoutFn = Callable[[Path, Sample], dict[int, Path]]
LAYOUTS: Registry[LayoutFn] = Registry("frame layout")


class FrameError(FileNotFoundError):
    """A missing or unreadable frame, naming the path."""


def frame_number(path: Path) -> int | None:
    """The frame number encoded in a file name, or None when it has no digits."""
    m = _LAST_INT.search(Path(path).stem)
    return int(m.group(1)) if m else None


def list_frames(folder: Path) -> dict[int, Path]:
    """Every image in ``folder`` keyed by its frame number.

    Raises:
        FrameError: the folder does not exist or holds no numbered image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FrameError(f"frame folder not found: {folder}")
    frames: dict[int, Path] = {}
    for p in folder.iterdir():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            n = frame_number(p)
            if n is not None:
                frames[n] = p
    if not frames:
        raise FrameError(f"no numbered image in frame folder: {folder}")
    return dict(sorted(frames.items()))


@LAYOUTS.register("numbered-frames")
def numbered_frames(root: Path, sample: Sample) -> dict[int, Path]:
    """``root / sample.source`` is a folder of numbered images (CASME II, SAMM, SynthME)."""
    return list_frames(Path(root) / sample.source)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as an RGB uint8 array ``[H, W, 3]``.

    Raises:
        FrameError: missing or undecodable file.
    """
    path = Path(path)
    if not path.is_file():
        raise FrameError(f"frame not found: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FrameError(f"unreadable image (corrupt or not an image): {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
