"""Face cropping applied during preparation.

An aligner looks at a clip's onset frame and returns one crop box ``(x0, y0, x1, y1)`` applied to
every frame of the clip (so the crop itself never moves and cannot fake motion), or None when it
finds no face; the preparation's ``on_align_failure`` policy then decides what happens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from mer.errors import UnavailableError
from mer.registry import Registry

Box = tuple[int, int, int, int]
AlignFn = Callable[[np.ndarray], "Box | None"]
ALIGNERS: Registry[AlignFn] = Registry("aligner")


@ALIGNERS.register("none")
def no_align(onset_rgb: np.ndarray) -> Box | None:
    """The whole frame (datasets shipped as cropped faces, SynthME)."""
    h, w = onset_rgb.shape[:2]
    return (0, 0, w, h)


# --- Detection and landmark alignment -------------------------------------------------------------------

# Margin added around a detected face (fraction of its side): Haar boxes cut the chin and forehead,
# where AU17/AU1/AU2 move. A frontal Haar box spans the brows to the mouth, so its centre sits above the
# face's: the crop is also moved down by DETECT_SHIFT of the box so that the chin (AU17, LSFM's chin
# region) is inside. Both were set on scikit-image's astronaut pasted into SAMM-sized frames at five
# scales (tests/test_align_real_faces.py): IoU 0.86-0.97 with a forehead-to-chin square read by eye
# (0.15 and no shift: 0.78-0.95, the chin cut).
DETECT_MARGIN = 0.12
DETECT_SHIFT = 0.1
_local = threading.local()  # cv2.CascadeClassifier and dlib objects are not shared across threads


def _square(x0: float, y0: float, x1: float, y1: float, margin: float, w: int, h: int) -> Box:
    """A square box around ``(x0, y0, x1, y1)`` grown by ``margin``, shifted (not cut) to fit the frame."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = min(max(x1 - x0, y1 - y0) * (1 + 2 * margin), w, h)
    left = int(round(min(max(cx - side / 2, 0), w - side)))
    top = int(round(min(max(cy - side / 2, 0), h - side)))
    s = int(round(side))
    return (left, top, left + s, top + s)


def _cascade() -> cv2.CascadeClassifier:
    if not hasattr(_local, "cascade"):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise UnavailableError(f"cannot load OpenCV's Haar cascade from {path}")
        _local.cascade = cascade
    return _local.cascade


@ALIGNERS.register("detect")
def detect_face(onset_rgb: np.ndarray) -> Box | None:
    """The largest face OpenCV's frontal Haar cascade finds on the onset frame, squared, with a margin.

    Returns None when no face is found (the preparation's failure policy applies).
    """
    h, w = onset_rgb.shape[:2]
    grey = cv2.equalizeHist(cv2.cvtColor(onset_rgb, cv2.COLOR_RGB2GRAY))
    min_side = max(24, min(h, w) // 10)  # ME datasets fill much of the frame; this skips small false hits
    faces = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, fw, fh = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    dy = DETECT_SHIFT * fh
    return _square(x, y + dy, x + fw, y + fh + dy, DETECT_MARGIN, w, h)


def dlib_predictor_path() -> Path:
    """The 68-point predictor file: ``$MER_DLIB_PREDICTOR``, else the one in face-recognition-models.

    Raises:
        RuntimeError: neither is available; the message says what to install.
    """
    env = os.environ.get("MER_DLIB_PREDICTOR")
    if env:
        return Path(env)
    try:
        import face_recognition_models

        return Path(face_recognition_models.pose_predictor_model_location())
    except ImportError:
        raise UnavailableError(
            "--align landmarks needs dlib's 68-point predictor: "
            "pip install dlib-bin face-recognition-models, "
            "or set MER_DLIB_PREDICTOR to shape_predictor_68_face_landmarks.dat"
        ) from None


def _dlib():
    if not hasattr(_local, "dlib"):
        try:
            import dlib
        except ImportError:
            raise UnavailableError(
                "--align landmarks needs dlib: pip install dlib-bin face-recognition-models"
            ) from None
        path = dlib_predictor_path()
        if not path.is_file():
            raise UnavailableError(f"dlib predictor file not found: {path}")
        _local.dlib = (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path)), dlib)
    return _local.dlib


def landmarks_box(points: np.ndarray, w: int, h: int, margin: float = 0.1) -> Box:
    """A square face box from 68 landmarks: their extent, raised to include the forehead above the brows.

    The brows (points 17–26) sit about a fifth of the face height below the hairline, so the box is
    extended upward by that much before the margin; the box is the same for every frame of the clip.
    """
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    brow = points[17:27, 1].min()
    y0 = min(y0, brow - 0.2 * (y1 - brow))
    return _square(float(x0), float(y0), float(x1), float(y1), margin, w, h)


def landmarks_unavailable() -> str | None:
    """Why the landmark aligner cannot run here (dlib or its predictor file missing), or None."""
    import importlib.util

    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (pip install dlib-bin face-recognition-models)"
    try:
        path = dlib_predictor_path()
    except RuntimeError as e:
        return str(e)
    return None if path.is_file() else f"dlib predictor file not found: {path}"


def aligner_chain(align: str) -> tuple[list[str], str | None]:
    """The aligners tried in order for ``align``, and why the asked one is skipped (None: it runs).

    ``landmarks`` falls back to ``detect`` on a clip where it finds no face, and on every clip when
    dlib cannot run here; the caller reports both (nothing is swapped silently).
    """
    ALIGNERS.get(align)  # an unknown name fails here, listing the valid ones
    if align != "landmarks":
        return [align], None
    why = landmarks_unavailable()
    return (["detect"], why) if why else (["landmarks", "detect"], None)


@ALIGNERS.register("landmarks")
def landmark_face(onset_rgb: np.ndarray) -> Box | None:
    """Face box from dlib's 68 landmarks on the onset frame (optional extra: dlib-bin).

    Raises:
        RuntimeError: dlib or the predictor file is missing (a setup problem, not a per-sample failure).
    """
    detector, predictor, dlib = _dlib()
    h, w = onset_rgb.shape[:2]
    rects = detector(onset_rgb, 1)
    if len(rects) == 0:
        return None
    rect = max(rects, key=lambda r: r.width() * r.height())
    shape = predictor(onset_rgb, rect)
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float32)
    return landmarks_box(points, w, h)


# dlib's 68-point indices of the five points MTCNN gives (the ones HTNet's authors place regions with):
# left eye (36–41), right eye (42–47), nose tip (30), left and right mouth corners (48, 54). "Left" is
# the image's left.
_FIVE = ((36, 42), (42, 48), (30, 31), (48, 49), (54, 55))


def five_points(face_rgb: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners of a face crop, as ``[5, 2]`` (x, y) fractions of its side.

    The crop is taken to be the face (prepared clips are face crops), so dlib's 68-point predictor runs
    on the whole image as the face rectangle: no detection step that could miss.

    Raises:
        RuntimeError: dlib or its predictor file is missing (the message says what to install).
    """
    _, predictor, dlib = _dlib()
    h, w = face_rgb.shape[:2]
    img = np.ascontiguousarray(face_rgb[..., :3], dtype=np.uint8)
    shape = predictor(img, dlib.rectangle(0, 0, w - 1, h - 1))
    pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float32)
    five = np.stack([pts[a:b].mean(0) for a, b in _FIVE])
    return five / np.array([w, h], dtype=np.float32)
