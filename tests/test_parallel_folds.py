"""``--parallel-folds``: folds trained at once in worker processes give the same run as one at a time."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mer.protocols.runner import RunConfig, run_bench
from mer.registrations import load_all

load_all()


def test_parallel_folds_equal_sequential(tmp_path):
    from mer.cli import app

    # "chance" draws its predictions from the fold seed: any seeding slip in a worker shows up.
    seq = run_bench(RunConfig(model="chance", protocol="loso-synth-3"), runs_dir=tmp_path, run_id="seq")
    args = ["bench", "run", "--model", "chance", "--protocol", "loso-synth-3", "--run-id", "par"]
    r = CliRunner().invoke(app, [*args, "--runs-dir", str(tmp_path), "--parallel-folds", "2"])
    assert r.exit_code == 0, r.output
    par = tmp_path / "par"
    # Same predictions and probabilities, row for row, whichever worker finished first.
    assert (par / "predictions.csv").read_text() == (seq.run_dir / "predictions.csv").read_text()
    assert json.loads((par / "metrics.json").read_text()) == json.loads(
        (seq.run_dir / "metrics.json").read_text()
    )
    meta = json.loads((par / "run.json").read_text())
    assert meta["status"] == "complete" and len(meta["folds"]) == seq.n_folds
    assert all(f["status"] == "done" and f["n_train"] > 0 for f in meta["folds"].values())


def test_auto_parallel_folds_one_per_core_for_catalogue_deep_models_on_cpu(monkeypatch):
    """Default ``--parallel-folds``: deep catalogue models on a CPU-only machine get one fold per core;
    classical and reference models, torchrun, a GPU and models registered at run time (which worker
    processes could not rebuild) get one fold at a time."""
    from dataclasses import replace

    import torch

    from mer.protocols.runner import auto_parallel_folds
    from mer.zoo.api import MODELS

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto_parallel_folds(MODELS.get("merclip")) == 3  # a functools.partial of mer's builder
    assert auto_parallel_folds(MODELS.get("ststnet")) == 3
    assert auto_parallel_folds(MODELS.get("merclip"), world_size=2) == 1
    assert auto_parallel_folds(MODELS.get("lbptop-svm")) == 1
    assert auto_parallel_folds(MODELS.get("chance")) == 1
    runtime = replace(MODELS.get("ststnet"), build=lambda **kw: MODELS.get("ststnet").build(**kw))
    assert auto_parallel_folds(runtime) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert auto_parallel_folds(MODELS.get("merclip")) == 1


def test_a_failing_parallel_fold_cancels_queued_folds_and_keeps_finished_ones():
    """One fold fails: folds already finished or still training are recorded, queued ones never start,
    and the fold's error reaches the caller."""
    import threading
    from concurrent.futures import Future

    import pytest

    from mer.protocols.runner import collect_folds

    done, failed, queued, training = Future(), Future(), Future(), Future()
    done.set_result((0, "frame0"))
    failed.set_exception(FloatingPointError("fold 1: non-finite loss"))
    training.set_running_or_notify_cancel()  # a worker has it: it cannot be cancelled
    threading.Timer(0.2, training.set_result, args=((3, "frame3"),)).start()
    recorded = []
    with pytest.raises(FloatingPointError, match="fold 1"):
        collect_folds([done, failed, queued, training], lambda *row: recorded.append(row))
    assert recorded == [(0, "frame0"), (3, "frame3")]
    assert queued.cancelled()
