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

from mer.errors import InputError
from mer.protocols.sample import Sample
from mer.registry import Registry

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")

LayoutFn = Callable[[Path, Sample], dict[int, Path]]
LAYOUTS: Registry[LayoutFn] = Registry("frame layout")


class FrameError(InputError, FileNotFoundError):
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


class VideoFrame:
    """One frame of an open video, decoded when read (nothing is written to disk).

    :func:`read_rgb` takes it in place of an image path, so preparation code reads a video's frames
    the way it reads a frame folder.
    """

    def __init__(self, video: Path, reader: object, index: int) -> None:
        self.video, self.reader, self.index = Path(video), reader, index

    def read(self) -> np.ndarray:
        try:
            return self.reader[self.index].asnumpy()  # type: ignore[index]
        except Exception as e:  # decord's DECORDError on a damaged stretch of the file
            raise FrameError(f"frame {self.index} of {self.video} cannot be decoded ({e})") from e

    def __str__(self) -> str:
        return f"{self.video}#frame{self.index}"


def stream_video(video: Path) -> dict[int, VideoFrame]:
    """Every frame of ``video`` (0-based) as a :class:`VideoFrame`: only the frames read are decoded.

    Raises:
        FrameError: the video cannot be opened or has no frame.
    """
    video = Path(video)
    try:
        import decord

        reader = decord.VideoReader(str(video), ctx=decord.cpu(0))
    except Exception as e:  # decord raises its own DECORDError and RuntimeError for bad files
        raise FrameError(f"unreadable video {video} ({type(e).__name__}: {e})") from e
    if len(reader) == 0:
        raise FrameError(f"video {video} has no frame")
    return {i: VideoFrame(video, reader, i) for i in range(len(reader))}


def read_rgb(path: Path | VideoFrame) -> np.ndarray:
    """Read an image (or a :class:`VideoFrame`) as an RGB uint8 array ``[H, W, 3]``.

    Raises:
        FrameError: missing or undecodable file.
    """
    if isinstance(path, VideoFrame):
        return path.read()
    path = Path(path)
    if not path.is_file():
        raise FrameError(f"frame not found: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FrameError(f"unreadable image (corrupt or not an image): {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# --- The real datasets' layouts -------------------------------------------------------------------------
# Each dataset ships as raw frames and as cropped faces, under a folder of its own name; the root given to
# `mer data add` may be the folder holding the subjects or the one above it, so the variants are searched.

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# Sub-folders of a dataset root that hold the subject folders, most usual first.
VARIANTS: dict[str, tuple[str, ...]] = {
    "casme2": ("CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW", "Cropped", "CASME2_Cropped", "cropped"),
    "samm": ("SAMM", "SAMM_CROP", "SAMM_cropped", "cropped"),
    "casme3": ("part_A", "Part_A", "data/part_A", "part_A/data/part_A"),
}


def _child_ci(folder: Path, name: str) -> Path | None:
    """``folder / name``, matching the name case-insensitively when the exact one is absent (CAS(ME)³ "J")."""
    exact = folder / name
    if exact.exists():
        return exact
    if not folder.is_dir():
        return None
    low = name.lower()
    return next((p for p in sorted(folder.iterdir()) if p.name.lower() == low), None)


def _resolve(base: Path, rel: str) -> Path | None:
    """``base / rel`` with each component matched case-insensitively as a fallback."""
    cur: Path | None = base
    for part in Path(rel).parts:
        cur = _child_ci(cur, part) if cur is not None else None
        if cur is None:
            return None
    return cur


def find_source(root: Path, source: str, variants: tuple[str, ...] = ()) -> Path:
    """Where ``source`` (a frame folder or video, relative to the subjects' folder) lies under ``root``.

    Tried in order: ``root/source``, ``root/<variant>/source`` for each known variant, then any one
    sub-folder of ``root``; a video file ``source.mp4`` (etc.) counts as well.

    Raises:
        FrameError: nothing found; the message names the first path tried.
    """
    root = Path(root)
    known = [root, *(root / v for v in variants)]

    def bases():
        yield from known
        if root.is_dir():  # listed only when the usual places miss
            yield from sorted(p for p in root.iterdir() if p.is_dir() and p not in known)

    for base in bases():
        hit = _resolve(base, source)
        if hit is not None:
            return hit
        for suffix in VIDEO_SUFFIXES:
            hit = _resolve(base, source + suffix)
            if hit is not None:
                return hit
    raise FrameError(f"frames of {source!r} not found: no folder or video at {root / source}")


def video_frames(video: Path, first: int | None = None, last: int | None = None) -> dict[int, Path]:
    """Decode frames ``first..last`` (0-based, inclusive; all when None) of a video into image files.

    The frames are written once to ``$MER_HOME/video-frames/<hash>/`` (PNG, lossless) so that the rest of
    preparation reads them like any frame folder; the hash covers the path, size and modification time.

    Raises:
        FrameError: the video cannot be opened or is shorter than ``last``.
    """
    import os

    from mer.protocols.config import mer_home
    from mer.protocols.io import stable_hash

    video = Path(video)
    try:
        import decord

        reader = decord.VideoReader(str(video), ctx=decord.cpu(0))
    except Exception as e:  # decord raises its own DECORDError and RuntimeError for bad files
        raise FrameError(f"unreadable video {video} ({type(e).__name__}: {e})") from e
    n = len(reader)
    first = 0 if first is None else max(0, first)
    last = n - 1 if last is None else last
    if last >= n or first > last:
        raise FrameError(f"video {video} has {n} frames; frames {first}..{last} asked for")
    st = video.stat()
    out = mer_home() / "video-frames" / stable_hash([str(video.resolve()), st.st_size, st.st_mtime_ns])
    out.mkdir(parents=True, exist_ok=True)
    wanted = list(range(first, last + 1))
    todo = [i for i in wanted if not (out / f"{i}.png").exists()]
    if todo:
        batch = reader.get_batch(todo).asnumpy()
        for i, rgb in zip(todo, batch, strict=True):
            tmp = out / f".{i}.{os.getpid()}.tmp.png"
            cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            os.replace(tmp, out / f"{i}.png")  # atomic: two threads on one clip never see half a file
    return {i: out / f"{i}.png" for i in wanted}


def _range(sample: Sample) -> tuple[int | None, int | None]:
    """The frames a sample needs; None, None when the sheet gives no range (DFME, MEGC2019)."""
    if sample.extras.get("frame_range") == "folder":
        return None, None
    return sample.onset, sample.offset


def _frames_at(path: Path, sample: Sample) -> dict[int, Path]:
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return video_frames(path, *_range(sample))
    return list_frames(path)


@LAYOUTS.register("casme2")
def casme2_frames(root: Path, sample: Sample) -> dict[int, Path]:
    """CASME II: ``sub01/EP02_01f/img46.jpg`` (raw) or ``reg_img46.jpg`` (Cropped), or a video."""
    return _frames_at(find_source(root, sample.source, VARIANTS["casme2"]), sample)


@LAYOUTS.register("samm")
def samm_frames(root: Path, sample: Sample) -> dict[int, Path]:
    """SAMM: ``006/006_1_2/006_05562.jpg`` (raw or cropped), or a video."""
    return _frames_at(find_source(root, sample.source, VARIANTS["samm"]), sample)


@LAYOUTS.register("casme3")
def casme3_frames(root: Path, sample: Sample) -> dict[int, Path]:
    """CAS(ME)³ Part A: ``spNO.1/a/<n>.jpg``, or ``spNO.1/a/color/<n>.jpg`` beside ``depth/``, or a video."""
    path = find_source(root, sample.source, VARIANTS["casme3"])
    color = _child_ci(path, "color") if path.is_dir() else None
    return _frames_at(color if color is not None and color.is_dir() else path, sample)


@LAYOUTS.register("video-stream")
def video_stream_layout(root: Path, sample: Sample) -> dict[int, VideoFrame]:
    """``root / sample.source`` is a video read on demand (``mer predict``: no frame files written)."""
    path = find_source(root, sample.source)
    if not path.is_file():
        raise FrameError(f"not a video file: {path}")
    return stream_video(path)


@LAYOUTS.register("video")
def video_layout(root: Path, sample: Sample) -> dict[int, Path]:
    """``root / sample.source`` is a video file (``.mp4`` etc. may be left out); frames are 0-based."""
    path = find_source(root, sample.source)
    if not path.is_file():
        raise FrameError(f"not a video file: {path}")
    return video_frames(path, *_range(sample))


_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def reduction_for(shape: tuple[int, int], short_side: int) -> int:
    """The largest JPEG decode reduction (1, 2, 4, 8) that keeps the short side at least ``short_side``."""
    short = min(shape[:2])
    return max((f for f in _REDUCED if short // f >= short_side), default=1)


def read_rgb_reduced(path: Path, factor: int) -> np.ndarray:
    """:func:`read_rgb` decoding at 1/``factor`` of the size (JPEG DCT scaling: 2.3× faster at 1/2 on
    640×480 frames). Preparation can use it when the crop is resized down anyway; crop boxes found at
    full size are divided by ``factor``.

    Raises:
        FrameError: missing or undecodable file.
    """
    path = Path(path)
    if not path.is_file():
        raise FrameError(f"frame not found: {path}")
    img = cv2.imread(str(path), _REDUCED[factor])
    if img is None:
        raise FrameError(f"unreadable image (corrupt or not an image): {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
