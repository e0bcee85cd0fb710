"""``mer bench sweep``: grid and paper-table plans, the dry-run projection, the local engine, retries and
recorded failures, resume after a kill, and ``mer bench status``.

The Ray and Slurm (submitit) engines are in ``test_sweep_engines.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _synth import small_synth
from typer.testing import CliRunner

from mer.protocols.runner import RunConfig, run_bench
from mer.registrations import load_all
from mer.sweep.backends import Backend, LocalBackend, make_backend
from mer.sweep.driver import run_sweep
from mer.sweep.jobs import run_fold_job
from mer.sweep.plan import Grid, expand, parse_axes, table_rows

load_all()


def _runs(root: Path) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sorted(root.glob("*/run.json"))}


def test_grid_expands_every_combination_and_repeated_options_are_axes():
    axes = parse_axes(["epochs=2", "epochs=3", "recipe=official"], "-o")
    assert axes == {"epochs": (2, 3), "recipe": ("official",)}
    configs = expand(Grid(("chance", "lbptop-svm"), ("loso-synth-3",), seeds=(0, 1), options=axes))
    assert len(configs) == 2 * 2 * 2
    assert {(c.model, c.seed, c.options["epochs"]) for c in configs} == {
        (m, s, e) for m in ("chance", "lbptop-svm") for s in (0, 1) for e in (2, 3)
    }
    assert len({c.run_id(c.size or "base") for c in configs}) == 8  # options change the run id
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_axes(["epochs"], "-o")
    with pytest.raises(ValueError, match="sizes"):
        expand(Grid(("chance",), ("loso-synth-3",), sizes=("huge",)))


def test_table_viii_maps_paper_rows_to_registered_models():
    models, protocols = table_rows("VIII")
    # SPEC Table VIII, rows 1-7: UniformerV2 + linear head, then the cumulative components, Emo-guided.
    assert models == [
        "uniformerv2",
        "merclip-no-align",
        "merclip-no-eim",
        "merclip-no-progressive",
        "merclip-no-aug",
        "merclip",
        "emo-clip",
    ]
    assert protocols == ["dfme-test-a", "dfme-test-b", "loso-samm-3"]
    with pytest.raises(ValueError, match="tables: VIII"):
        table_rows("XIII")


def test_dry_run_table_viii_on_samm_without_the_dataset(tmp_path):
    """SAMM is not registered: folds come from the protocol (28) and samples from Table III (133). The
    FLOPs of the base MER-CLIP are those benchmarks/RESULTS.md lists (405.47 G forward, 805.40 G
    backward per clip), so the H100 figure is checked against that arithmetic."""
    from mer.cli import app

    def dry(*args):
        r = CliRunner().invoke(app, ["bench", "sweep", *args, "--dry-run", "--runs-dir", str(tmp_path)])
        assert r.exit_code == 0, r.output
        return r.output

    plan = json.loads(dry("--model", "merclip", "--protocol", "loso-samm-3", "--json"))
    (full,) = plan["runs"]
    # SAMM not added: its raw release (face crop) is assumed and said; the preparation is in the run id.
    assert full["run_id"].startswith("loso-samm-3__merclip-base__seed0__prep-") and full["todo"] == 28
    assert any("samm is not added yet" in n for n in full["plan_notes"])
    assert full["train_clip_steps"] == pytest.approx(133 * 27 * 55)
    want_flops = 133 * 27 * 55 * (405.47e9 + 805.40e9) + 133 * 405.47e9
    assert full["flops"] == pytest.approx(want_flops, rel=1e-4)
    assert full["gpu_hours"] == pytest.approx(want_flops / (989.4e12 * 0.35) / 3600, rel=1e-4)
    assert "35%" in plan["rate_note"] and "assumed" in plan["rate_note"]
    # A finished fold on disk is not counted again; a measured rate replaces the datasheet.
    (tmp_path / full["run_id"] / "folds").mkdir(parents=True)
    (tmp_path / full["run_id"] / "folds" / "fold_003.csv").write_text("x")
    out = dry("--model", "merclip", "--protocol", "loso-samm-3", "--device-tflops", "100")
    assert "1 run(s), 27 fold job(s) to run (1 finished folds skipped)" in out
    assert "measured rate 100 TFLOP/s" in out
    # The whole table (tiny, so that counting its 7 networks is quick): 7 runs x 28 folds.
    plan = json.loads(dry("--table", "VIII", "--protocol", "loso-samm-3", "--size", "tiny", "--json"))
    assert plan["n_runs"] == 7 and plan["fold_jobs"] == 7 * 28 and plan["runs_not_projected"] == 0
    assert plan["gpu_hours"] == pytest.approx(sum(x["gpu_hours"] for x in plan["runs"]))
    tiny = next(x for x in plan["runs"] if x["run_id"].startswith("loso-samm-3__merclip-tiny__seed0"))
    # benchmarks/RESULTS.md: 0.308 GFLOP per training clip at tiny; tiny trains 14 epochs.
    assert tiny["flops"] == pytest.approx(133 * 27 * 14 * 0.308e9, rel=0.02)


def test_backend_flags_that_an_engine_does_not_use_are_refused():
    with pytest.raises(ValueError, match="does not use --partition"):
        make_backend("local", {"partition": "gpu"}, {"partition": "--partition"})
    with pytest.raises(ValueError, match="local, ray, slurm"):
        make_backend("kubernetes", {})


class ScriptedBackend(Backend):
    """Runs jobs in this process; the first attempt of the folds in ``fail_first`` reports a failure
    (as a worker would), so that the driver's retry path is exercised with real fold jobs."""

    name = "scripted"

    def __init__(self, fail_first: set[int]):
        self.fail_first, self.calls = fail_first, []

    def run(self, jobs, on_done):
        self.calls.append([(j.fold, j.attempt) for j in jobs])
        for j in jobs:
            if j.fold in self.fail_first and j.attempt == 1:
                on_done(j, {"status": "failed", "error": "OSError: node lost", "traceback": "Traceback: x"})
            else:
                on_done(j, run_fold_job(j))


def test_a_failed_fold_is_retried_then_the_run_is_the_same(tmp_path):
    small_synth(tmp_path / "synth")
    ref = run_bench(RunConfig(model="chance", protocol="loso-synth-3"), runs_dir=tmp_path / "ref")
    backend = ScriptedBackend({1, 3})
    res = run_sweep(
        [RunConfig(model="chance", protocol="loso-synth-3")], backend, tmp_path / "runs", retries=1
    )
    assert backend.calls == [[(i, 1) for i in range(5)], [(1, 2), (3, 2)]]  # round 2 = the failed ones
    assert res.trained == 5 and res.retried == 2 and not res.failed
    run = res.runs[0]
    assert (run / "metrics.json").read_bytes() == (ref.run_dir / "metrics.json").read_bytes()
    assert not list((run / "folds").glob("*.failed.txt"))  # a fold that succeeded keeps no failure
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and all(f["status"] == "done" for f in meta["folds"].values())


def test_failures_after_retries_are_recorded_and_the_rest_finishes(tmp_path):
    """A fold that fails on every attempt (its log path is taken by a folder, so the job cannot start)
    keeps the traceback of each attempt in its run, run.json records it as failed, the other run of the
    sweep completes, and the CLI exits 6 naming the fold. Fixing the cause and rerunning trains it."""
    from mer.cli import app

    small_synth(tmp_path / "synth")
    runs = tmp_path / "runs"
    from mer.sweep.driver import open_runs

    # The run folder as the sweep will name it (a non-default SynthME puts its data id in the name).
    (opened,) = open_runs([RunConfig(model="majority", protocol="loso-synth-3")], runs)
    run_id = opened.run_dir.name
    blocked = runs / run_id / "logs" / "fold_000.log"
    blocked.mkdir(parents=True)
    args = ["bench", "sweep", "--model", "chance", "--model", "majority", "--protocol", "loso-synth-3"]
    args += ["--runs-dir", str(runs), "--retries", "1", "--no-leaderboard", "--workers", "1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 6, r.output
    assert f"failed: {run_id} fold 0 after 2 attempt(s)" in r.output
    assert "IsADirectoryError" in r.output and "1 fold job(s) failed" in r.output
    bad = blocked.parent.parent
    meta = json.loads((bad / "run.json").read_text())
    assert meta["status"] == "partial" and meta["folds"]["0"]["status"] == "failed"
    assert [meta["folds"][k]["status"] for k in ("1", "2", "3", "4")] == ["done"] * 4
    assert meta["folds"]["0"]["attempts"] == 2
    text = (bad / meta["folds"]["0"]["traceback"]).read_text()
    assert text.count("=== attempt") == 2 and text.count("IsADirectoryError") >= 2
    assert not (bad / "folds" / "fold_000.running.json").exists()
    assert len(list(runs.glob("*chance-base__seed0/metrics.json"))) == 1
    blocked.rmdir()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "1 fold(s) trained, 9 already done" in r.output  # 2 runs x 5 folds
    assert json.loads((bad / "run.json").read_text())["folds"]["0"]["status"] == "done"
    assert not (bad / "folds" / "fold_000.failed.txt").exists()


def test_local_sweep_equals_bench_run_and_rerun_trains_nothing(tmp_path):
    small_synth(tmp_path / "synth")
    configs = expand(Grid(("chance", "majority"), ("loso-synth-3",)))
    lb = tmp_path / "runs" / "LEADERBOARD.md"
    res = run_sweep(configs, LocalBackend(workers=2), tmp_path / "runs", leaderboard=lb)
    assert res.trained == 2 * 5 and res.skipped == 0 and "chance" in lb.read_text()
    for c in configs:
        ref = run_bench(c, runs_dir=tmp_path / "ref")
        got = tmp_path / "runs" / ref.run_dir.name
        assert (got / "metrics.json").read_bytes() == (ref.run_dir / "metrics.json").read_bytes()
        assert (got / "predictions.csv").read_bytes() == (ref.run_dir / "predictions.csv").read_bytes()
        meta = json.loads((got / "run.json").read_text())
        assert meta["status"] == "complete" and sorted(meta["folds"]) == [str(i) for i in range(5)]
        assert all(f["seconds"] >= 0 and f["n_test"] > 0 for f in meta["folds"].values())
        assert (got / "logs" / "fold_000.log").exists()
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/folds/fold_*.csv")}
    again = run_sweep(configs, LocalBackend(workers=2), tmp_path / "runs")
    assert again.trained == 0 and again.skipped == 10
    assert {p: p.stat().st_mtime_ns for p in before} == before


@pytest.mark.slow
def test_killed_sweep_resumes_without_retraining(tmp_path):
    """Kill a sweep (its whole process group) after a few folds; the same command trains only the rest,
    and the metrics equal an uninterrupted run's."""
    small_synth(tmp_path / "synth", subjects=8)
    runs = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "mer",
        "bench",
        "sweep",
        "--model",
        "lbptop-svm",
        "--protocol",
        "loso-synth-3",
    ]
    cmd += ["--runs-dir", str(runs), "--workers", "1", "--no-leaderboard"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list(runs.glob("*/folds/fold_*.csv"))) < 2 and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p: p.read_bytes() for p in runs.glob("*/folds/fold_*.csv")}
    assert 2 <= len(done) < 8
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{8 - len(done)} fold(s) trained, {len(done)} already done" in r.stdout
    assert all(p.read_bytes() == b for p, b in done.items())
    ref = run_bench(RunConfig(model="lbptop-svm", protocol="loso-synth-3"), runs_dir=tmp_path / "ref")
    run = runs / ref.run_dir.name
    assert (run / "metrics.json").read_bytes() == (ref.run_dir / "metrics.json").read_bytes()


def test_deep_fold_logs_epochs_and_tensorboard_and_status_reads_them(tmp_path):
    from mer.cli import app

    small_synth(tmp_path / "synth")
    runs = tmp_path / "runs"
    args = ["bench", "sweep", "--model", "merclip", "--size", "tiny", "--protocol", "loso-synth-3"]
    args += ["--folds", "0", "-o", "epochs=2", "--runs-dir", str(runs), "--tensorboard", "--no-leaderboard"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    (run,) = _runs(runs).values()
    rows = [json.loads(x) for x in (run / "folds" / "fold_000.epochs.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in rows] == [0, 1] and all(x["epochs"] == 2 for x in rows)
    # Train loss, learning rate and MER-CLIP's progressive loss weights (Eqs. 14-15), per epoch.
    assert all({"loss", "lr", "clip", "cls", "w_clip", "w_cls", "time"} <= set(x) for x in rows)
    assert rows[0]["w_clip"] > rows[1]["w_clip"] and rows[0]["w_cls"] < rows[1]["w_cls"]
    assert list((run / "tensorboard" / "fold_000").glob("events.out.tfevents.*"))
    r = CliRunner().invoke(app, ["bench", "status", str(runs), "--json"])
    assert r.exit_code == 0, r.output
    (state,) = json.loads(r.output)
    assert state["status"] == "partial" and [f["state"] for f in state["folds"]] == ["done"]


def test_status_shows_running_failed_and_pending_folds_with_an_eta(tmp_path):
    """A run record written by hand: fold 0 done in 100 s, fold 1 running for 60 s at epoch 3 of 10,
    fold 2 failed, fold 3 pending. Fold 1's ETA is 60/3·7 = 140 s; the run's is (140 + 100) / 1."""
    from mer.sweep.status import run_status

    run = tmp_path / "r"
    (run / "folds").mkdir(parents=True)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    meta = {"status": "running", "n_folds": 4, "folds_requested": [0, 1, 2, 3], "created": t0.isoformat()}
    meta["folds"] = {"2": {"name": "sub03", "status": "failed", "error": "ValueError: x"}}
    (run / "run.json").write_text(json.dumps(meta))
    (run / "folds" / "fold_000.csv").write_text("sample\n")
    (run / "folds" / "fold_000.json").write_text(json.dumps({"name": "sub01", "seconds": 100.0}))
    started = t0 + dt.timedelta(seconds=200)
    marker = {"started": started.isoformat(), "host": "elsewhere", "pid": 1}
    (run / "folds" / "fold_001.running.json").write_text(json.dumps(marker))
    epochs = "".join(json.dumps({"epoch": e, "epochs": 10, "loss": 1.0}) + "\n" for e in range(3))
    (run / "folds" / "fold_001.epochs.jsonl").write_text(epochs)
    s = run_status(run, now=started + dt.timedelta(seconds=60))
    assert [f.state for f in s.folds] == ["done", "running", "failed", "pending"]
    assert s.folds[1].epoch == 3 and s.folds[1].eta_s == pytest.approx(140.0)
    assert s.eta_s == pytest.approx(240.0) and s.elapsed_s == pytest.approx(260.0)
    assert s.folds[2].error == "ValueError: x"


def test_local_engine_runs_one_job_per_visible_gpu(monkeypatch):
    """Three visible GPUs: three workers, and each worker sees only its own GPU (CUDA_VISIBLE_DEVICES,
    set before CUDA starts in the worker)."""
    import multiprocessing as mp

    from mer.sweep.backends import _local_init

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,7")
    workers, _, gpus = LocalBackend().plan()
    assert workers == 3 and gpus == ["4", "5", "7"]
    assert LocalBackend(workers=1).plan()[0] == 1
    slots = mp.get_context("spawn").Value("i", 0)
    seen = []
    for _ in range(4):  # what each new worker process does at start
        _local_init(slots, gpus)
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == ["4", "5", "7", "4"]
