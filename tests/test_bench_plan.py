"""`mer bench run --dry-run`: the resolved preparation and recipe, per dataset (SPEC A.5b), with no data.

Expected values are typed from ../shared/SPEC.md (A.5b, A.5, the decisions table), not read from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mer.cli import app


def dry(*args: str) -> dict:
    r = CliRunner().invoke(app, ["bench", "run", *args, "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def fails(*args: str) -> str:
    r = CliRunner().invoke(app, ["bench", "run", *args, "--dry-run"])
    assert r.exit_code != 0, r.output
    return r.output


def test_samm_3_official_on_a_machine_without_samm():
    """The closing note's figure: SAMM never added, exit 0, face crop on, the samm_3cls config."""
    plan = dry("--model", "merclip", "--protocol", "loso-samm-3", "-o", "recipe=official")
    assert plan["dataset"]["added"] is False and plan["dataset"]["release"] == "raw"
    assert plan["preparation"]["align"] == "landmarks"
    assert plan["preparation_sources"]["align"] == "release:raw"
    assert plan["alignment"]["chain"][-1] == "detect"  # the detector is the fallback, always
    t = plan["training"]
    assert t["lr"] == pytest.approx(8.75e-6, rel=1e-12)
    assert t["flip"] == 0.0 and t["color_jitter"] == 1.0 and t["batch_sampler"] == "balanced"
    assert t["global_batch"] == 16 and t["epochs"] == 55 and t["warmup_epochs"] == 5
    assert plan["init"]["init"] == "clip" and t["text"] == "clip"
    assert plan["selection"].startswith("last epoch")


# protocol, after DFME, LR, flip, ColorJitter, drop path (backbone, global), sampler, w_0, frame sampler,
# short side at test (None = the crop size, 224)
A5B = [
    ("loso-casme2-5", False, 6.25e-6, 0.5, 1.0, (0.0, 0.0), "balanced", 2.0, "keyframe", None),
    ("loso-casme2-3", False, 6.25e-6, 0.5, 1.0, (0.2, 0.4), "shuffle", 2.0, "keyframe", None),
    ("loso-casme2-5", True, 3.75e-6, 0.0, 1.0, (0.2, 0.4), "shuffle", 2.0, "keyframe", None),
    ("loso-casme2-3", True, 3.75e-6, 0.0, 1.0, (0.2, 0.4), "shuffle", 2.0, "keyframe", None),
    ("loso-samm-5", False, 8.75e-6, 0.0, 0.0, (0.2, 0.4), "shuffle", 2.0, "keyframe", 256),
    ("loso-samm-3", False, 8.75e-6, 0.0, 1.0, (0.2, 0.4), "balanced", 2.0, "keyframe", None),
    ("loso-samm-5", True, 8.75e-6, 0.0, 0.0, (0.2, 0.4), "shuffle", 1.5, "keyframe", None),
    ("loso-samm-3", True, 8.75e-6, 0.0, 0.0, (0.2, 0.4), "shuffle", 1.5, "keyframe", None),
    ("loso-casme3-7", False, 6.25e-6, 0.0, 1.0, (0.2, 0.4), "balanced", 2.0, "uniform", None),
    ("loso-casme3-4", False, 6.25e-6, 0.0, 1.0, (0.2, 0.4), "balanced", 2.0, "uniform", None),
    ("loso-casme3-3", False, 6.25e-6, 0.0, 1.0, (0.2, 0.4), "balanced", 2.0, "uniform", None),
    ("dfme-test-a", False, 6.25e-6, 0.0, 1.0, (0.0, 0.0), "shuffle", 2.0, "keyframe", None),
    ("dfme-test-b", False, 6.25e-6, 0.0, 1.0, (0.0, 0.0), "shuffle", 2.0, "keyframe", None),
]


@pytest.fixture
def dfme_run(tmp_path) -> Path:
    """A finished merclip run on dfme-test-a with saved weights (what `--init run:` starts from)."""
    from safetensors.numpy import save_file

    run = tmp_path / "runs" / "dfme"
    (run / "weights").mkdir(parents=True)
    save_file(
        {"visual.encoder.proj": np.zeros((2, 2), np.float32)}, str(run / "weights" / "fold_000.safetensors")
    )
    meta = {
        "run_id": "dfme",
        "model": "merclip",
        "size": "base",
        "protocol": "dfme-test-a",
        "classes": ["a", "b"],
    }
    (run / "run.json").write_text(json.dumps({**meta, "folds": {"0": {"name": "test-a", "status": "done"}}}))
    return run


@pytest.mark.parametrize("row", A5B, ids=[f"{r[0]}{'-after-dfme' if r[1] else ''}" for r in A5B])
def test_official_recipe_pins_every_cell_of_spec_a5b(row, dfme_run):
    protocol, after_dfme, lr, flip, cj, drop_path, sampler, w0, frames, short = row
    extra = ["--init", "run:dfme", "--runs-dir", str(dfme_run.parent)] if after_dfme else []
    plan = dry("--model", "merclip", "--protocol", protocol, "-o", "recipe=official", *extra)
    t = plan["training"]
    assert t["lr"] == pytest.approx(lr, rel=1e-12)
    assert (t["flip"], t["color_jitter"]) == (flip, cj)
    assert tuple(t["drop_path"]) == drop_path
    assert t["batch_sampler"] == sampler
    assert t["loss"]["w0"] == w0 and t["loss"]["w_min"] == 1.0 and t["loss"]["weight_sum"] == 2.0
    assert (t["augmix"], t["lsfm"], t["lsfm_lambda"]) == (1.0, 0.5, 0.5)  # in every config
    assert (t["global_batch"], t["epochs"], t["warmup_epochs"]) == (16, 55, 5)
    assert plan["preparation"]["sampler"] == frames
    assert (plan["preparation"]["frames"], plan["preparation"]["size"]) == (16, 224)
    assert plan["preparation"]["resize_short"] == short
    # TSN keeps the test frame and the frames training draws from (tests/test_tsn_pool.py)
    assert (plan["preparation"]["pool"] > 1) == (frames == "uniform")
    if after_dfme:
        assert plan["init"]["from"]["protocol"] == "dfme-test-a" and plan["init"]["sha256"]


def test_paper_recipe_is_the_papers():
    t = dry("--model", "merclip", "--protocol", "loso-samm-3")["training"]
    assert t["recipe"] == "paper" and t["authors_config"] is None
    assert t["lr"] == 5e-5 and t["global_batch"] == 16 and t["epochs"] == 55 and t["warmup_epochs"] == 5
    assert (t["flip"], t["color_jitter"], t["augmix"], t["lsfm"]) == (0.5, 0.5, 0.5, 0.5)
    assert t["batch_sampler"] == "shuffle" and t["loss"]["w0"] == 2.0


def test_user_flags_win_and_say_so():
    plan = dry(
        "--model", "merclip", "--protocol", "loso-casme3-7", "-o", "recipe=official",
        "--sampler", "keyframe", "--align", "detect", "--prep", "resize_short=256", "--image-size", "224",
        "-o", "balanced_sampler=false",
    )  # fmt: skip
    p, src = plan["preparation"], plan["preparation_sources"]
    assert (p["sampler"], p["align"], p["resize_short"]) == ("keyframe", "detect", 256)
    assert src["sampler"] == src["align"] == src["resize_short"] == src["size"] == "user"
    assert plan["training"]["batch_sampler"] == "shuffle"
    assert any("balanced_sampler=false overrides" in n for n in plan["notes"])


def test_what_a_size_cannot_use_is_an_error_naming_it():
    out = fails("--model", "merclip", "--protocol", "loso-synth-3", "--size", "tiny", "--init", "clip")
    assert "--init clip" in out and "size tiny" in out
    out = fails("--model", "merclip", "--protocol", "loso-synth-3", "--prep", "colour=1")
    assert "colour" in out and "align" in out  # names the bad key and lists the good ones
    out = fails("--model", "merclip", "--protocol", "loso-synth-3", "--align", "sideways")
    assert "align='sideways'" in out and "landmarks" in out
    out = fails("--model", "merclip", "--protocol", "loso-synth-3", "--frames", "2")
    assert "frames=2" in out
    out = fails("--model", "merclip-no-align", "--protocol", "loso-synth-3", "-o", "text=clip")
    assert "text" in out and "no text branch" in out
    out = fails(
        "--model", "ststnet", "--protocol", "loso-synth-3", "--sampler", "uniform", "--prep", "pool=3"
    )
    assert "pool=3" in out and "ststnet" in out


def _frame(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 120, np.uint8))


def test_data_add_recognises_and_records_the_release(tmp_path):
    from mer.protocols.config import dataset_entry

    cases = [
        ("casme2", "c2raw", "CASME2_RAW_selected/sub01/EP01/img1.jpg", (640, 480), "raw"),
        ("casme2", "c2crop", "Cropped/sub01/EP01/reg_img1.jpg", (250, 300), "cropped"),
        ("samm", "sammraw", "006/006_1_2/006_05562.jpg", (2040, 1088), "raw"),
        ("samm", "sammcrop", "006/006_1_2/006_05562.jpg", (380, 400), "cropped"),
        ("casme3", "c3", "part_A/spNO.1/a/color/1.jpg", (1280, 720), "raw"),
    ]
    for dataset, folder, rel, (w, h), kind in cases:
        _frame(tmp_path / folder / rel, w, h)
        r = CliRunner().invoke(app, ["data", "add", dataset, str(tmp_path / folder)])
        assert r.exit_code == 0, r.output
        entry = dataset_entry(dataset)
        assert entry["release"] == kind, (folder, entry)
        assert kind in r.output and entry["release_evidence"] in r.output.replace("\n", " ")
        plan = dry("--model", "merclip", "--protocol", f"loso-{dataset}-3")
        assert plan["dataset"]["release"] == kind
        assert plan["preparation"]["align"] == ("landmarks" if kind == "raw" else "none")
    # --release overrides what was found
    r = CliRunner().invoke(app, ["data", "add", "samm", str(tmp_path / "sammcrop"), "--release", "raw"])
    assert r.exit_code == 0 and dataset_entry("samm")["release"] == "raw"


def test_preparation_is_in_run_json_the_run_id_and_merge_refuses_other_recipes(tmp_path):
    from _synth import small_synth

    from mer.protocols.runner import RunConfigError, merge_runs

    small_synth(tmp_path / "synth", subjects=3, clips=6)  # 3×4 leaves "positive" empty: refused
    runs = tmp_path / "runs"
    common = ["bench", "run", "--model", "chance", "--protocol", "loso-synth-3", "--runs-dir", str(runs)]
    r1 = CliRunner().invoke(app, [*common, "--folds", "0", "--frames", "6", "--image-size", "32"])
    r2 = CliRunner().invoke(app, [*common, "--folds", "1", "--frames", "5", "--image-size", "32"])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    d1, d2 = sorted(runs.iterdir())
    assert (
        "prep-" in d1.name
        and "prep-" in d2.name
        and d1.name.split("__folds")[0] != d2.name.split("__folds")[0]
    )
    meta = json.loads((d1 / "run.json").read_text())
    assert meta["recipe"]["frames"] in (5, 6) and meta["preparation_sources"]["frames"] == "user"
    assert "pool" not in meta["recipe"]  # as runs made before the field existed: they still resume
    assert meta["release"]["kind"] == "as-is" and "alignment" in meta and meta["selection"].startswith("last")
    with pytest.raises(RunConfigError, match="recipe"):
        merge_runs([d1, d2], tmp_path / "merged")
    shown = CliRunner().invoke(app, ["leaderboard", "show", "--runs", str(runs), "--details"])
    assert shown.exit_code == 0, shown.output
    block = shown.output.split(d1.name)[-1]
    prep_line = next(line for line in block.splitlines() if line.strip().startswith("preparation"))
    assert f"frames={meta['recipe']['frames']}" in prep_line and "size=32" in prep_line
    assert "release      as-is" in block
    assert "selection    last epoch" in block
