"""Frame layouts of the real datasets, on roots re-laid from SynthME frames, and preparation end to end."""

from __future__ import annotations

import numpy as np
import pytest
from _realroots import as_casme2, as_casme3, as_samm, make_synth, write_video

import mer.protocols.real  # noqa: F401  (registers casme2, samm, casme3 and their protocols)
from mer.protocols.layouts import LAYOUTS, FrameError, list_frames, read_rgb
from mer.protocols.prepare import Recipe, prepare
from mer.protocols.sample import Sample
from mer.protocols.sheets.casme2 import parse_casme2
from mer.protocols.sheets.casme3 import parse_casme3
from mer.protocols.sheets.samm import parse_samm

SMALL = Recipe(frames=8, size=32)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return root, make_synth(root, subjects=3, clips=3)


@pytest.fixture(scope="module")
def casme2_root(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("casme2")
    return out, as_casme2(*synth, out)


def test_casme2_layout_raw_and_cropped(synth, casme2_root, tmp_path):
    root, sheet = casme2_root
    s = parse_casme2(sheet).samples[0]
    frames = LAYOUTS.get("casme2")(root, s)  # found under CASME2_RAW_selected/
    assert list(frames) == sorted(frames) and s.onset in frames and s.offset in frames
    assert frames[s.onset].name == f"img{s.onset}.jpg"
    cropped_sheet = as_casme2(*synth, tmp_path, variant="Cropped")
    c = parse_casme2(cropped_sheet).samples[0]
    assert LAYOUTS.get("casme2")(tmp_path, c)[c.onset].name == f"reg_img{c.onset}.jpg"


def test_frames_sort_numerically_not_by_name(tmp_path):
    for n in (9, 10, 100, 11):
        (tmp_path / f"img{n}.jpg").write_bytes(b"x")
    assert list(list_frames(tmp_path)) == [9, 10, 11, 100]


def test_samm_layout(synth, tmp_path):
    sheet = as_samm(*synth, tmp_path)
    s = parse_samm(sheet).samples[0]
    assert s.subject == "001" and s.onset > 5000
    frames = LAYOUTS.get("samm")(tmp_path, s)
    assert frames[s.onset].name == f"001_{s.onset:05d}.jpg"
    assert frames[s.onset].parent == tmp_path / "SAMM" / "001" / s.sample_id


def test_casme3_layout_color_folder_and_case(synth, tmp_path):
    sheet = as_casme3(*synth, tmp_path)
    samples = parse_casme3(sheet).samples
    assert samples[0].source == samples[1].source and samples[0].sample_id != samples[1].sample_id
    frames = LAYOUTS.get("casme3")(tmp_path, samples[0])
    assert frames[samples[0].onset].parent.name == "color"
    upper = Sample(**{**samples[0].__dict__, "source": samples[0].source.upper().replace("SPNO", "spNO")})
    assert LAYOUTS.get("casme3")(tmp_path, upper) == frames  # "spNO.1/A" finds spNO.1/a


def test_missing_and_unreadable_frames_name_the_path(casme2_root, tmp_path):
    root, sheet = casme2_root
    s = parse_casme2(sheet).samples[0]
    gone = Sample(**{**s.__dict__, "source": "sub01/EP99_9"})
    with pytest.raises(FrameError, match="EP99_9"):
        LAYOUTS.get("casme2")(root, gone)
    bad = tmp_path / "img3.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(FrameError, match="img3.jpg"):
        read_rgb(bad)


def test_video_layout(synth, tmp_path):
    root, samples = synth
    s = samples[0]
    frames = list_frames(root / s.source)
    write_video(frames, tmp_path / "clip.mp4")
    n = len(frames)
    clip = Sample(**{**s.__dict__, "source": "clip", "onset": 2, "apex": 4, "offset": n - 3})
    got = LAYOUTS.get("video")(tmp_path, clip)
    assert list(got) == list(range(2, n - 2))
    img = read_rgb(got[2])
    ref = read_rgb(frames[list(frames)[2]])
    assert img.shape == ref.shape and np.abs(img.astype(int) - ref.astype(int)).mean() < 12  # mp4v is lossy
    (tmp_path / "broken.mp4").write_bytes(b"\0" * 100)
    with pytest.raises(FrameError, match="broken.mp4"):
        LAYOUTS.get("video")(tmp_path, Sample(**{**clip.__dict__, "source": "broken.mp4"}))
    too_long = Sample(**{**clip.__dict__, "offset": n + 5})
    with pytest.raises(FrameError, match=f"has {n} frames"):
        LAYOUTS.get("video")(tmp_path, too_long)


@pytest.mark.parametrize("dataset", ["casme2", "samm", "casme3"])
def test_prepare_each_layout_end_to_end(synth, tmp_path, dataset):
    make = {"casme2": as_casme2, "samm": as_samm, "casme3": as_casme3}[dataset]
    sheet = make(*synth, tmp_path)
    prepared = prepare(dataset, tmp_path, SMALL, annotations=sheet)
    n = len(synth[1]) * (2 if dataset == "casme3" else 1)
    assert prepared.store.shape == (n, 8, 32, 32, 3)
    assert prepared.created and prepared.store[:, 0].std() > 0
    again = prepare(dataset, tmp_path, SMALL, annotations=sheet)
    assert not again.created  # the cache is reused


def test_lbptop_loso_casme2_5_on_a_casme2_root(tmp_path):
    """`mer bench run --model lbptop-svm --protocol loso-casme2-5` on a CASME II-shaped root."""
    from mer.protocols.config import add_dataset
    from mer.protocols.runner import RunConfig, run_bench
    from mer.registrations import load_all

    load_all()
    synth_root = tmp_path / "synth"
    samples = make_synth(synth_root, subjects=3, clips=6, seed=1)
    # Keep the 5-class emotions only, so that every clip is used.
    keep = [s for s in samples if s.emotion in ("disgust", "happiness", "others", "repression", "surprise")]
    sheet = as_casme2(synth_root, keep, tmp_path / "CASME2")
    add_dataset("casme2", tmp_path / "CASME2", sheet)
    result = run_bench(
        RunConfig(model="lbptop-svm", protocol="loso-casme2-5", recipe={"size": 48}),
        runs_dir=tmp_path / "runs",
    )
    import pandas as pd

    pred = pd.read_csv(result.run_dir / "predictions.csv")
    assert len(pred) == len(keep)
    assert pred["fold"].nunique() == 3


def test_reduced_decode_matches_a_downscaled_full_decode(synth):
    import cv2

    from mer.protocols.layouts import read_rgb_reduced, reduction_for

    assert reduction_for((480, 640), 224) == 2 and reduction_for((1088, 2040), 224) == 4
    assert reduction_for((128, 128), 224) == 1
    root, samples = synth
    path = next(iter(list_frames(root / samples[0].source).values()))
    full = read_rgb(path)
    half = read_rgb_reduced(path, 2)
    assert half.shape == (full.shape[0] // 2, full.shape[1] // 2, 3)
    ref = cv2.resize(full, (half.shape[1], half.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(half.astype(int) - ref.astype(int)).mean() < 4
