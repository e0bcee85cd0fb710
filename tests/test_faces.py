"""Face cropping: Haar detection on the onset frame, the landmark box, and per-sample failure reports."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
from _realroots import as_casme2, make_synth

import mer.protocols.real  # noqa: F401
from mer.protocols.faces import ALIGNERS, detect_face, landmarks_box
from mer.protocols.layouts import FrameError
from mer.protocols.prepare import Recipe, prepare


@pytest.fixture(scope="module")
def astronaut():
    """scikit-image's bundled portrait (Eileen Collins), placed off-centre in a 640×480 frame."""
    from skimage.data import astronaut

    face = cv2.resize(astronaut(), (300, 300))
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:400, 300:600] = face
    return frame


def test_detect_finds_the_face_and_returns_a_square_box(astronaut):
    box = detect_face(astronaut)
    assert box is not None
    x0, y0, x1, y1 = box
    assert x1 - x0 == y1 - y0  # square, so the resize does not distort the face
    assert min(x0, y0) >= 0 and x1 <= 640 and y1 <= 480
    # The face (about x 390-470, y 120-210 after the resize) lies inside, and the box is within the portrait.
    assert x0 < 400 and x1 > 460 and y0 < 140 and y1 > 200
    assert x0 >= 290 and x1 <= 610


def test_detect_returns_none_without_a_face():
    assert detect_face(np.full((240, 320, 3), 128, np.uint8)) is None


def test_landmarks_box_includes_the_forehead():
    # A face of 100×100 px: jaw/eyes/mouth at y 150..250, brows (points 17-26) at y 150.
    pts = np.zeros((68, 2), np.float32)
    pts[:, 0] = np.linspace(200, 300, 68)
    pts[:, 1] = np.linspace(160, 250, 68)
    pts[17:27, 1] = 150
    x0, y0, x1, y1 = landmarks_box(pts, 640, 480)
    assert x1 - x0 == y1 - y0
    assert y0 < 150 - 15  # raised above the brows
    assert y1 >= 250


@pytest.mark.skipif(importlib.util.find_spec("dlib") is not None, reason="dlib is installed")
def test_landmarks_without_dlib_says_what_to_install():
    with pytest.raises(RuntimeError, match="dlib-bin"):
        ALIGNERS.get("landmarks")(np.zeros((64, 64, 3), np.uint8))


def _flat_root(root, clips=3):
    """A CASME II-shaped root whose frames are flat grey: no face anywhere."""
    rows = ["Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion"]
    for k in range(clips):
        folder = root / "sub01" / f"EP0{k}_1"
        folder.mkdir(parents=True)
        for n in range(1, 6):
            cv2.imwrite(str(folder / f"img{n}.jpg"), np.full((96, 96, 3), 100 + 10 * n, np.uint8))
        rows.append(f"01,EP0{k}_1,1,3,5,4,disgust")
    sheet = root / "CASME2-coding-test.csv"
    sheet.write_text("\n".join(rows) + "\n")
    return sheet


def test_alignment_failures_are_reported_per_sample(tmp_path):
    sheet = _flat_root(tmp_path)
    prepared = prepare("casme2", tmp_path, Recipe(frames=4, size=32, align="detect"), annotations=sheet)
    fallbacks = [i for i in prepared.issues if i.field == "align"]
    assert sorted(i.sample for i in fallbacks) == ["sub01/EP00_1", "sub01/EP01_1", "sub01/EP02_1"]
    assert all(i.row is not None and not i.fatal for i in fallbacks)
    assert all(s.extras.get("align_fallback") == "full-frame" for s in prepared.samples)
    with pytest.raises(FrameError, match=r"no face found on the onset frame of sub01/EP0\d_1"):
        prepare(
            "casme2",
            tmp_path,
            Recipe(frames=4, size=32, align="detect", on_align_failure="error"),
            annotations=sheet,
        )


def test_detect_on_synthme_reports_what_it_could_not_find(tmp_path):
    # SynthME's cartoon faces are mostly not faces to a Haar cascade; whatever is missed is reported.
    synth = tmp_path / "synth"
    samples = make_synth(synth, subjects=2, clips=2)
    sheet = as_casme2(synth, samples, tmp_path / "root")
    prepared = prepare(
        "casme2", tmp_path / "root", Recipe(frames=4, size=32, align="detect"), annotations=sheet
    )
    reported = {i.sample for i in prepared.issues if i.field == "align"}
    marked = {s.sample_id for s in prepared.samples if s.extras.get("align_fallback")}
    assert reported == marked
