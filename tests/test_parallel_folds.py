"""``--parallel-folds``: folds trained at once in worker processes give the same run as one at a time."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mer.catalog import load_all
from mer.protocols.runner import RunConfig, run_bench

load_all()


@pytest.mark.parametrize(("model", "folds"), [("chance", None), ("lbptop-svm", "0-2")])
def test_parallel_folds_equal_sequential(tmp_path, model, folds):
    config = RunConfig(model=model, protocol="loso-synth-3", folds=folds)
    seq = run_bench(config, runs_dir=tmp_path, run_id="seq")
    par = run_bench(config, runs_dir=tmp_path, run_id="par", parallel_folds=2)
    assert par.folds_done == seq.folds_done
    # Same predictions and probabilities, row for row, whichever worker finished first.
    assert (par.run_dir / "predictions.csv").read_text() == (seq.run_dir / "predictions.csv").read_text()
    assert json.loads((par.run_dir / "metrics.json").read_text()) == json.loads(
        (seq.run_dir / "metrics.json").read_text()
    )
    meta = json.loads((par.run_dir / "run.json").read_text())
    assert meta["status"] == ("complete" if folds is None else "partial")
    assert all(f["status"] == "done" and f["n_train"] > 0 for f in meta["folds"].values())


def test_cli_parallel_folds_option(tmp_path):
    from mer.cli import app

    args = ["bench", "run", "--model", "chance", "--protocol", "loso-synth-3", "--folds", "0-1"]
    r = CliRunner().invoke(app, [*args, "--runs-dir", str(tmp_path), "--parallel-folds", "2"])
    assert r.exit_code == 0, r.output
    assert "2/" in r.output or "folds" in r.output
    (run,) = tmp_path.iterdir()
    assert sorted(p.name for p in (run / "folds").iterdir()) == ["fold_000.csv", "fold_001.csv"]
