"""The optical flow of a benchmark run: TV-L1 by default, recorded, keyed, compared; never swapped."""

from __future__ import annotations

import json

import cv2
import pytest
from _synth import small_synth
from typer.testing import CliRunner

from mer.protocols.config import mer_home
from mer.protocols.flow import FlowUnavailableError
from mer.protocols.runner import RunConfig, RunConfigError, merge_runs, run_bench
from mer.registrations import load_all

load_all()


def _ststnet(runs, **kw):
    return run_bench(
        RunConfig(model="ststnet", protocol="loso-synth-3", folds="0", options={"epochs": 1}, **kw),
        runs_dir=runs,
    )


def test_run_records_tvl1_and_farneback_is_another_run(tmp_path):
    small_synth(tmp_path / "synth", subjects=3, clips=6)  # every class present
    base = _ststnet(tmp_path / "runs")
    meta = json.loads((base.run_dir / "run.json").read_text())
    assert meta["flow"]["method"] == "tvl1" and meta["flow"]["params"]["lambda"] == 0.15
    assert meta["config"]["flow"] == meta["flow"]  # what a resume compares

    # The preparation-option spelling (--prep flow=farneback) reaches the flow, not the frame recipe.
    other = _ststnet(tmp_path / "runs", recipe={"flow": "farneback"})
    assert other.run_dir != base.run_dir and other.run_dir.name.endswith("flow-farneback__folds0")
    other_meta = json.loads((other.run_dir / "run.json").read_text())
    assert other_meta["flow"]["method"] == "farneback" and other_meta["recipe"] == meta["recipe"]
    assert len(list(mer_home().glob("prepared/synthme/*/flow_*.npy"))) == 2  # one cache per method

    with pytest.raises(RunConfigError, match="flow"):
        merge_runs([base.run_dir, other.run_dir], tmp_path / "merged")


def test_missing_tvl1_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delattr(cv2, "optflow", raising=False)
    monkeypatch.delattr(cv2, "DualTVL1OpticalFlow_create", raising=False)
    small_synth(tmp_path / "synth", subjects=3, clips=4)
    with pytest.raises(FlowUnavailableError, match="contrib"):
        _ststnet(tmp_path / "runs")
    assert not (mer_home() / "prepared").exists() and not (tmp_path / "runs").exists()


def test_flow_option_on_a_model_without_flow_is_refused(tmp_path):
    from mer.cli import app

    small_synth(tmp_path / "synth", subjects=3, clips=4)
    args = ["bench", "run", "--model", "chance", "--protocol", "loso-synth-3", "--flow", "farneback"]
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "does not read optical flow" in result.output
    assert not (tmp_path / "runs").exists()


def test_dry_run_shows_the_flow():
    from mer.cli import app

    def plan(*extra):
        args = ["bench", "run", "--model", "ststnet", "--protocol", "loso-synth-3", "--dry-run", "--json"]
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    default, asked = plan(), plan("--prep", "flow=farneback", "--prep", "flow.winsize=21")
    assert default["flow"]["method"] == "tvl1" and default["flow"]["params"]["tau"] == 0.25
    assert asked["flow"]["method"] == "farneback" and asked["flow"]["params"]["winsize"] == 21
    assert asked["preparation"] == default["preparation"]  # flow keys are not frame preparation
    assert asked["run_id"].endswith("__flow-farneback-" + asked["run_id"].rsplit("-", 1)[1])
