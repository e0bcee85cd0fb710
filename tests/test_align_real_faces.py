"""Face crop end to end on a real face: the default preparation of a raw SAMM root finds the face.

scikit-image ships one colour photograph of a frontal face (``astronaut``, Eileen Collins). Its head is
pasted off-centre, at several scales and mirrored, into 2040×1088 frames (SAMM's raw size) over a
cluttered background; the preparation the runner resolves for ``merclip`` on a raw SAMM release (no
flag given) must crop every clip to the face.

The face square in the 512×512 photograph was read by eye from a 10-px grid (tests/data is not needed):
the face runs from the upper forehead (y ≈ 64) to just below the chin (the chin ends at y ≈ 178), and is
centred on the nose (x ≈ 223), so the square is x 164–282, y 64–182.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from _realroots import samm_sheet

FACE = (164, 64, 282, 182)  # by eye, see the module docstring
HEAD = (100, 0, 350, 260)  # the part of the photograph pasted: head and shoulders
FRAME_W, FRAME_H = 2040, 1088

# (scale of the pasted head, top-left corner in the frame, mirrored)
CLIPS = [
    (2.0, (80, 120), False),
    (3.0, (1200, 300), False),
    (2.5, (1400, 40), True),
    (3.5, (300, 150), True),
    (2.2, (900, 500), False),
]


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _background(rng: np.random.Generator) -> np.ndarray:
    """A lab-like clutter: a grey gradient, tiled non-face photographs and sensor noise."""
    from skimage import data

    bg = np.tile(np.linspace(60, 170, FRAME_W, dtype=np.float32)[None, :, None], (FRAME_H, 1, 3))
    for img, (x, y) in (
        (data.coffee(), (1700, 700)),
        (data.chelsea(), (40, 760)),
        (data.rocket(), (620, 20)),
    ):
        h, w = min(img.shape[0], FRAME_H - y), min(img.shape[1], FRAME_W - x)
        bg[y : y + h, x : x + w] = img[:h, :w]
    bg += rng.normal(0, 4, bg.shape)
    return np.clip(bg, 0, 255).astype(np.uint8)


def _paste(bg: np.ndarray, scale: float, at: tuple[int, int], mirror: bool) -> tuple[np.ndarray, tuple]:
    """``bg`` with the head pasted; returns the frame and where the face square landed."""
    from skimage.data import astronaut

    x0, y0, x1, y1 = HEAD
    head = astronaut()[y0:y1, x0:x1]
    fx0, fy0, fx1, fy1 = (v - o for v, o in zip(FACE, (x0, y0, x0, y0), strict=True))
    if mirror:
        head = head[:, ::-1]
        fx0, fx1 = (x1 - x0) - fx1, (x1 - x0) - fx0
    head = cv2.resize(np.ascontiguousarray(head), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    px, py = at
    frame = bg.copy()
    frame[py : py + head.shape[0], px : px + head.shape[1]] = head
    return frame, tuple(
        round(v * scale) + o for v, o in zip((fx0, fy0, fx1, fy1), (px, py, px, py), strict=True)
    )


@pytest.fixture(scope="module")
def samm_raw(tmp_path_factory) -> tuple[Path, dict[str, tuple]]:
    """A raw SAMM root: one clip per entry of CLIPS, 6 frames each (the face brightens slowly)."""
    root = tmp_path_factory.mktemp("samm_raw")
    rng = np.random.default_rng(0)
    truth, rows = {}, []
    for k, (scale, at, mirror) in enumerate(CLIPS):
        frame, face = _paste(_background(rng), scale, at, mirror)
        name = f"006_1_{k + 1}"
        for t in range(6):
            img = cv2.convertScaleAbs(frame, alpha=1.0, beta=2 * t)
            path = root / "SAMM" / "006" / name / f"006_{5000 + t:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows.append(("006", name, 5000, 5002, 5005, "12", "Happiness"))
        truth[name] = face
    samm_sheet(rows, root)
    return root, truth


def test_default_preparation_crops_raw_samm_frames_to_the_face(samm_raw):
    from mer.protocols.config import add_dataset
    from mer.protocols.faces import detect_face
    from mer.protocols.plan import plan_run
    from mer.protocols.prepare import prepare
    from mer.protocols.runner import RunConfig
    from mer.registrations import load_all

    load_all()
    root, truth = samm_raw
    entry = add_dataset("samm", root)
    assert entry["release"] == "raw"  # folder SAMM/ under the root
    plan = plan_run(RunConfig(model="merclip", protocol="loso-samm-5"))  # no flag: the defaults
    assert plan.recipe.align == "landmarks" and plan.sources["align"] == "release:raw"
    prepared = prepare("samm", root, plan.recipe)

    assert len(prepared.samples) == len(CLIPS)
    report = prepared.alignment
    assert report["asked"] == "landmarks" and report["chain"][-1] == "detect" and not report["full_frame"]
    if report["unavailable"]:  # no dlib here: the fallback is said, not silent
        assert any(i.field == "align" and "landmarks" in i.problem for i in prepared.issues)
    for i, s in enumerate(prepared.samples):
        box = tuple(s.extras["face_box"])
        name = s.sample_id.split("/")[-1]
        assert iou(box, truth[name]) >= 0.8, (name, box, truth[name], iou(box, truth[name]))
        # The cached 224×224 onset frame is the face: the detector finds one filling most of it.
        cached = np.ascontiguousarray(prepared.store[i, 0])
        found = detect_face(cached)
        assert found is not None and found[2] - found[0] >= 0.6 * cached.shape[1], (name, found)
    # For a person to look at (MER_KEEP_PNG=folder): the cached onset frames side by side; never compared.
    keep = os.environ.get("MER_KEEP_PNG")
    if keep:
        sheet = np.concatenate([prepared.store[i, 0] for i in range(len(CLIPS))], axis=1)
        cv2.imwrite(str(Path(keep) / "aligned_onsets.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
