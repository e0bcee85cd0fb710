import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from _synth import small_synth
from typer.testing import CliRunner

from mer.protocols.runner import RunConfig, RunConfigError, merge_runs, run_bench
from mer.registrations import load_all

load_all()


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_full_run_writes_run_directory(tmp_path):
    small_synth(tmp_path / "synth")
    result = run_bench(RunConfig(model="majority", protocol="loso-synth-3"), runs_dir=tmp_path / "runs")
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["status"] == "complete" and meta["n_folds"] == 5 and len(meta["folds"]) == 5
    assert meta["model"] == "majority" and meta["protocol"] == "loso-synth-3" and meta["select"] == "last"
    pred = pd.read_csv(result.run_dir / "predictions.csv")
    assert list(pred.columns[:5]) == ["sample", "subject", "fold", "y_true", "y_pred"]
    assert {"p_negative", "p_positive", "p_surprise"} <= set(pred.columns)
    # Every sample is tested exactly once, in the fold of its own subject.
    assert pred["sample"].is_unique
    assert (pred.groupby("fold")["subject"].nunique() == 1).all()
    m = _metrics(result.run_dir)
    assert m["n_samples"] == len(pred) and m["folds_done"] == 5
    assert m["acc"] == pytest.approx((pred.y_true == pred.y_pred).mean())


def test_rerunning_a_complete_run_changes_no_byte(tmp_path):
    """``make demo`` twice, or a sweep run again, must not rewrite a finished run's record (its
    ``finished`` time, cache check) nor its predictions and metrics."""
    small_synth(tmp_path / "synth")
    config = RunConfig(model="chance", protocol="loso-synth-3")
    first = run_bench(config, runs_dir=tmp_path / "runs")
    files = sorted(p for p in first.run_dir.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    time.sleep(1.1)  # run.json's times have one-second resolution
    again = run_bench(config, runs_dir=tmp_path / "runs")
    assert again.metrics == first.metrics and again.resumed_folds == 5
    assert sorted(p for p in first.run_dir.rglob("*") if p.is_file()) == files
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before


def test_folds_then_merge_equals_one_full_run(tmp_path):
    small_synth(tmp_path / "synth")
    runs = tmp_path / "runs"
    full = run_bench(RunConfig(model="lbptop-svm", protocol="loso-synth-3"), runs_dir=runs)
    a = run_bench(RunConfig(model="lbptop-svm", protocol="loso-synth-3", folds="0,3-4"), runs_dir=runs)
    b = run_bench(RunConfig(model="lbptop-svm", protocol="loso-synth-3", folds="1-2"), runs_dir=runs)
    assert json.loads((a.run_dir / "run.json").read_text())["status"] == "partial"
    merged = merge_runs([a.run_dir, b.run_dir], runs / "merged")
    assert merged.folds_done == 5
    got, want = _metrics(merged.run_dir), _metrics(full.run_dir)
    for k in ("uf1", "uar", "acc", "confusion"):
        assert got[k] == want[k]
    assert pd.read_csv(merged.run_dir / "predictions.csv").equals(
        pd.read_csv(full.run_dir / "predictions.csv")
    )
    with pytest.raises(RunConfigError, match="fold fold_001 is in both"):
        merge_runs([a.run_dir, b.run_dir, b.run_dir], runs / "bad")


def test_merge_refuses_different_models(tmp_path):
    small_synth(tmp_path / "synth")
    runs = tmp_path / "runs"
    a = run_bench(RunConfig(model="chance", protocol="loso-synth-3", folds="0"), runs_dir=runs)
    b = run_bench(RunConfig(model="majority", protocol="loso-synth-3", folds="1"), runs_dir=runs)
    with pytest.raises(RunConfigError, match="model is 'majority', not 'chance'"):
        merge_runs([a.run_dir, b.run_dir], runs / "m")


def test_existing_run_with_other_config_is_refused(tmp_path):
    small_synth(tmp_path / "synth")
    run_bench(RunConfig(model="chance", protocol="loso-synth-3"), runs_dir=tmp_path / "r", run_id="x")
    with pytest.raises(RunConfigError, match="seed=0"):
        run_bench(
            RunConfig(model="chance", protocol="loso-synth-3", seed=1), runs_dir=tmp_path / "r", run_id="x"
        )


def test_killed_run_resumes_with_same_metrics(tmp_path):
    small_synth(tmp_path / "synth", subjects=6)
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = (
        "from mer.registrations import load_all; load_all()\n"
        "from mer.protocols.runner import RunConfig, run_bench\n"
        "run_bench(RunConfig(model='lbptop-svm', protocol='loso-synth-3'),\n"
        f"          runs_dir={str(runs)!r}, run_id='r')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    folds = runs / "r" / "folds"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(folds.glob("fold_*.csv"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(folds.glob("fold_*.csv")))
    assert 2 <= done_before < 6, "the run must be killed part-way"
    assert not (runs / "r" / "metrics.json").exists()
    resumed = run_bench(RunConfig(model="lbptop-svm", protocol="loso-synth-3"), runs_dir=runs, run_id="r")
    assert resumed.folds_done == 6
    fresh = run_bench(RunConfig(model="lbptop-svm", protocol="loso-synth-3"), runs_dir=runs, run_id="fresh")
    assert _metrics(resumed.run_dir)["confusion"] == _metrics(fresh.run_dir)["confusion"]
    assert _metrics(resumed.run_dir)["uf1"] == _metrics(fresh.run_dir)["uf1"]


def test_cli_unknown_model_and_protocol_list_valid_names(tmp_path):
    from mer.cli import app

    r = CliRunner().invoke(app, ["bench", "run", "--model", "lbptop-sv", "--protocol", "loso-synth-3"])
    assert r.exit_code == 2
    assert "unknown model 'lbptop-sv'" in r.output and "Did you mean 'lbptop-svm'" in r.output
    assert "chance" in r.output and "majority" in r.output
    r = CliRunner().invoke(app, ["bench", "run", "--model", "chance", "--protocol", "loso-synth"])
    assert r.exit_code == 2 and "Valid protocols:" in r.output and "loso-synth-3" in r.output


def test_cli_bench_run_prints_metrics(tmp_path):
    from mer.cli import app

    small_synth(tmp_path / "synth")
    r = CliRunner().invoke(
        app,
        [
            "bench",
            "run",
            "--model",
            "majority",
            "--protocol",
            "loso-synth-3",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--folds",
            "0-1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "UF1" in r.output and "2/5" in r.output


def test_non_finite_probabilities_are_refused(tmp_path):
    import numpy as np

    from mer.zoo.api import MODELS, ModelSpec, Predictions

    class NaNModel:
        def fit(self, train, val=None):
            pass

        def predict(self, test):
            return Predictions(np.zeros(len(test), int), np.full((len(test), 3), np.nan))

        def state_dict(self):
            return {}

    if "nan-model" not in MODELS:
        MODELS.register(
            "nan-model",
            ModelSpec(
                "nan-model", lambda **_: NaNModel(), ("base",), recipe={"base": {"frames": 4, "size": 16}}
            ),
        )
    small_synth(tmp_path / "synth")
    with pytest.raises(FloatingPointError, match="fold 0: model returned non-finite"):
        run_bench(RunConfig(model="nan-model", protocol="loso-synth-3"), runs_dir=tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/folds/*.csv"))


def test_cli_nan_loss_is_one_clear_line_and_earlier_folds_are_kept(tmp_path):
    from mer.cli import app
    from mer.zoo.api import MODELS, ModelSpec
    from mer.zoo.train import NonFiniteLossError

    class DivergesOnFoldTwo:
        def __init__(self, seed):
            self.seed = seed

        def fit(self, train, val=None):
            if self.seed % 1000 == 2:
                raise NonFiniteLossError("non-finite loss (nan) at epoch 0, step 0")

        def predict(self, test):
            import numpy as np

            from mer.zoo.api import Predictions

            return Predictions(np.zeros(len(test), int), np.tile([1.0, 0.0, 0.0], (len(test), 1)))

        def state_dict(self):
            return {}

    if "diverges" not in MODELS:
        MODELS.register(
            "diverges",
            ModelSpec(
                "diverges",
                lambda seed=0, **_: DivergesOnFoldTwo(seed),
                ("base",),
                recipe={"base": {"frames": 4, "size": 16}},
            ),
        )
    small_synth(tmp_path / "synth")
    runs = tmp_path / "runs"
    r = CliRunner().invoke(
        app, ["bench", "run", "--model", "diverges", "--protocol", "loso-synth-3", "--runs-dir", str(runs)]
    )
    assert r.exit_code == 6, r.output  # run failed
    assert "error: non-finite loss (nan)" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in runs.glob("*/folds/*.csv")) == ["fold_000.csv", "fold_001.csv"]


def test_cli_unknown_model_option_is_one_clear_line(tmp_path):
    """``-o KEY=VALUE`` with a key the model does not have: exit 2 and one line naming the key (a
    traceback before), for a classical model and for a deep one, whose builder runs in fold workers."""
    from mer.cli import app
    from mer.zoo.api import MODELS, UnknownOptionError

    small_synth(tmp_path / "synth", subjects=3, clips=4)
    args = [
        "bench",
        "run",
        "--protocol",
        "loso-synth-3",
        "--runs-dir",
        str(tmp_path / "runs"),
        "-o",
        "bogus=1",
    ]
    r = CliRunner().invoke(app, [*args, "--model", "lbptop-svm"])
    assert r.exit_code == 2, r.output
    assert "error: lbptop-svm: unknown option(s) bogus" in r.output and "Traceback" not in r.output
    for name in ("merclip", "ststnet", "merclip-au", "microau-clip"):
        with pytest.raises(UnknownOptionError, match=f"{name}: unknown option"):
            MODELS.get(name).build(num_classes=3, size="tiny", bogus=1)
