"""The ``flow-images`` layout: precomputed u, v, strain images matched to a sheet's rows."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mer.cli import app
from mer.protocols.flow_images import (
    FlowImageError,
    FlowImageSpec,
    flow_image_clips,
    read_flow_image,
    registered_spec,
)
from mer.protocols.protocol import PROTOCOLS
from mer.registrations import load_all

load_all()

# (source dataset, subject as the sheet writes it, subject folder as files name it)
SUBJECTS = [("casme2", "sub01", "sub01"), ("casme2", "sub02", "sub02"), ("samm", "6", "006"),
            ("samm", "7", "007"), ("smic", "s01", "s01"), ("smic", "s02", "s02")]  # fmt: skip
LABELS = ("negative", "positive", "surprise")


def _flow_image(label: int, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """An RGB uint8 image holding u, v, strain: the class moves the motion to another face region."""
    u = rng.normal(0, 6, (side, side))
    v = rng.normal(0, 6, (side, side))
    rows = slice(label * side // 3, (label + 1) * side // 3)
    u[rows] += 40
    v[rows] -= 30
    strain = np.abs(np.gradient(u)[0]) + np.abs(np.gradient(v)[1])
    rgb = np.stack([128 + u, 128 + v, strain * 4], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_composite(root: Path, clips_per_subject: int = 4, seed: int = 0) -> Path:
    """A MEGC2019 sheet (headerless, numeric labels) and one flow image per row, named
    ``{subject}_{filename}`` with the stray case and whitespace real folders have; returns the sheet."""
    rng = np.random.default_rng(seed)
    images = root / "flow"
    images.mkdir(parents=True)
    rows = []
    for k, (source, subject, folder) in enumerate(SUBJECTS):
        for c in range(clips_per_subject):
            label = (k + c) % 3
            filename = f"EP{c:02d}_{k}"
            rows.append([source, subject, filename, label])
            name = f"{folder}_{filename}"
            if c == 0:
                name = f" {name.upper()} "  # stray whitespace and case
            rgb = _flow_image(label, rng)
            cv2.imwrite(str(images / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    sheet = root / "combined_3class_gt.csv"
    pd.DataFrame(rows).to_csv(sheet, header=False, index=False)
    return sheet


def _add(root: Path, sheet: Path, *extra: str):
    args = ["data", "add", "megc2019", str(root / "flow"), "--layout", "flow-images"]
    return CliRunner().invoke(
        app, [*args, "--pattern", "{subject}_{filename}", "--annotations", str(sheet), *extra]
    )


def test_ststnet_on_megc2019_flow_images_reports_each_dataset(tmp_path):
    sheet = write_composite(tmp_path)
    added = _add(tmp_path, sheet)
    assert added.exit_code == 0, added.output
    assert "24 flow images" in added.output
    runs = tmp_path / "runs"
    args = ["bench", "run", "--model", "ststnet", "--protocol", "megc2019", "-o", "epochs=3"]
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(runs), "--parallel-folds", "1"])
    assert result.exit_code == 0, result.output
    assert "per source dataset" in result.output and "smic" in result.output
    run_dir = next(runs.iterdir())
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["flow"]["method"] == "flow-images" and meta["flow"]["pattern"] == "{subject}_{filename}"
    assert meta["prepared"] == str((tmp_path / "flow").resolve())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_folds"] == metrics["folds_done"] == 6
    parts = metrics["per_dataset"]
    assert list(parts) == ["casme2", "samm", "smic"]
    assert all(parts[p]["n_samples"] == 8 for p in parts)
    pred = pd.read_csv(run_dir / "predictions.csv", dtype=str)
    for part, m in parts.items():  # each part's figure is over that part's predictions only
        mine = pred[pred["subject"].str.startswith(part + "/")]
        assert m["acc"] == pytest.approx((mine["y_true"] == mine["y_pred"]).mean())


def test_values_follow_the_documented_mapping(tmp_path):
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 28).astype(np.uint8)[None, :]  # R: u
    rgb[..., 1] = 64  # G: v, constant but for one pixel
    rgb[0, 0, 1] = 65
    rgb[..., 2] = np.linspace(0, 255, 28).astype(np.uint8)[:, None]  # B: strain
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = read_flow_image(path, FlowImageSpec())
    assert out.shape == (3, 28, 28)
    assert out[0, 5, 27] == pytest.approx((255 - 128) / 128) and out[0, 5, 0] == pytest.approx(-1.0)
    assert out[1, 5, 5] == pytest.approx((64 - 128) / 128)
    assert out[2, 27, 3] == pytest.approx(1.0) and out[2, 0, 3] == pytest.approx(0.0)
    # Another channel order and mapping: the file's R is strain, B is u.
    spec = FlowImageSpec(channels=("strain", "v", "u"), offset=(0, 0, 0), scale=(255, 255, 255))
    swapped = read_flow_image(path, spec)
    assert swapped[0, 27, 3] == pytest.approx(1.0) and swapped[2, 5, 27] == pytest.approx(1.0)


def test_faces_constant_channels_and_missing_images_are_named(tmp_path):
    sheet = write_composite(tmp_path)
    folder = tmp_path / "flow"
    first = sorted(folder.iterdir())[3]
    # A face-like photo: one smooth picture in all three channels with a colour tint.
    yy, xx = np.mgrid[:28, :28]
    face = (120 + 80 * np.exp(-((xx - 14) ** 2 + (yy - 12) ** 2) / 60)).astype(np.float32)
    photo = np.stack([face, face * 0.8, face * 0.6], -1).astype(np.uint8)
    cv2.imwrite(str(first), photo)
    result = _add(tmp_path, sheet)
    assert result.exit_code != 0 and first.name in result.output and "same picture" in result.output
    assert registered_spec("megc2019") is None  # nothing recorded

    const = _flow_image(0, np.random.default_rng(1))
    const[..., 1] = 77
    cv2.imwrite(str(first), cv2.cvtColor(const, cv2.COLOR_RGB2BGR))
    result = _add(tmp_path, sheet)
    assert result.exit_code != 0 and first.name in result.output
    assert "channel G (v) is constant" in result.output

    first.unlink()
    with pytest.raises(FlowImageError, match=r"1 of 24 samples have no image.*sheet row"):
        from mer.protocols.flow_images import match_samples, parse_samples

        match_samples(folder, parse_samples("megc2019", sheet), FlowImageSpec())


def test_frame_models_are_refused_and_loso_protocols_read_images(tmp_path):
    sheet = write_composite(tmp_path)
    assert _add(tmp_path, sheet).exit_code == 0
    args = ["bench", "run", "--model", "lbptop-svm", "--protocol", "megc2019"]
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "needs frames" in result.output
    prepared = CliRunner().invoke(app, ["data", "prepare", "megc2019"])
    assert prepared.exit_code != 0 and "registered as flow images" in prepared.output

    # A per-dataset LOSO protocol: CASME II's own sheet, the same kind of folder.
    casme = tmp_path / "casme2"
    rng = np.random.default_rng(2)
    casme.mkdir()
    rows = []
    for subject in ("01", "02"):
        for c, emotion in enumerate(("happiness", "surprise", "disgust", "others")):
            rows.append([subject, f"EP0{c}_1", 10, 20, 30, "4", emotion])
            cv2.imwrite(str(casme / f"sub{subject}_EP0{c}_1.png"), _flow_image(c % 3, rng))
    columns = [
        "Subject",
        "Filename",
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        "Action Units",
        "Estimated Emotion",
    ]
    pd.DataFrame(rows, columns=columns).to_csv(casme / "CASME2-coding-test.csv", index=False)
    added = CliRunner().invoke(app, ["data", "add", "casme2", str(casme), "--layout", "flow-images"])
    assert added.exit_code == 0, added.output
    images, clips = flow_image_clips(PROTOCOLS.get("loso-casme2-3"))
    assert len(clips) == 6 and clips.feature("flow").shape == (6, 3, 28, 28)  # "others" left out
    assert {p.name for p in images.files} == {f"sub{s}_EP0{c}_1.png" for s in ("01", "02") for c in range(3)}
