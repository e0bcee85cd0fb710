import csv
import hashlib

import numpy as np
from _synth import small_synth

from mer.protocols.synthme import make_identity, parse_synthme, render_face


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_identical_files_other_seed_differs(tmp_path):
    a = small_synth(tmp_path / "a", subjects=2, clips=3, seed=7, register=False)
    b = small_synth(tmp_path / "b", subjects=2, clips=3, seed=7, register=False)
    c = small_synth(tmp_path / "c", subjects=2, clips=3, seed=8, register=False)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_layout_and_sheet_agree(tmp_path):
    root = small_synth(tmp_path / "s", subjects=3, clips=4, register=False)
    parsed = parse_synthme(root / "SynthME-coding.csv")
    assert len(parsed.samples) == 12 and not parsed.issues
    assert {s.subject for s in parsed.samples} == {"01", "02", "03"}  # text, leading zeros kept
    for s in parsed.samples:
        frames = sorted(int(p.stem[3:]) for p in (root / s.source).glob("img*.jpg"))
        assert frames == list(range(s.onset, s.offset + 1))
        assert s.onset < s.apex < s.offset
        assert s.aus, "every SynthME clip has at least one AU"


def test_motion_is_local_and_small_identity_is_large():
    rng = np.random.default_rng(0)
    a, b = make_identity(rng), make_identity(rng)
    neutral = render_face(a, {}, 128, 128).astype(float)
    smile = render_face(a, {"12": 1.0}, 128, 128).astype(float)
    other = render_face(b, {}, 128, 128).astype(float)
    moved = np.abs(smile - neutral).sum(-1) > 10
    # AU12 moves only the lower face, and far fewer pixels than a change of identity does.
    assert moved.any() and not moved[:64].any()
    assert np.abs(smile - neutral).mean() * 5 < np.abs(other - neutral).mean()


def test_broken_sheet_row_names_file_and_row(tmp_path):
    import pytest

    from mer.protocols.sample import AnnotationError

    root = small_synth(tmp_path / "s", subjects=2, clips=2, register=False)
    sheet = root / "SynthME-coding.csv"
    rows = list(csv.reader(sheet.open()))
    rows[3][2] = "twelve"  # OnsetFrame of the third sample
    with sheet.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(AnnotationError, match=r"SynthME-coding.csv: row 4 \(sub02/.*\), column OnsetFrame"):
        parse_synthme(sheet)
