"""The sweep's cluster engines against the local one: Ray (a real head on this machine, started and
stopped by the test) and Slurm through submitit (its local executor runs the array tasks as
subprocesses; the sbatch script a real cluster would get is checked as text)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _synth import small_synth

from mer.protocols.runner import RunConfig, run_bench
from mer.registrations import load_all
from mer.sweep.backends import LocalBackend, RayBackend, SlurmBackend
from mer.sweep.driver import run_sweep
from mer.sweep.plan import Grid, expand

load_all()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """A Ray head on 127.0.0.1 with 2 CPUs, stopped at the end (``ray stop``)."""
    pytest.importorskip("ray")
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    start = [ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    start += ["--num-cpus", "2", "--num-gpus", "0", "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(start, check=True, capture_output=True, timeout=300)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120)


@pytest.mark.slow
def test_ray_sweep_writes_the_same_runs_as_local(tmp_path, ray_head):
    """2 models × 2 seeds: every metrics.json and predictions.csv is byte for byte the local engine's
    (metrics.json holds no timing; per-fold seconds live in run.json)."""
    small_synth(tmp_path / "synth")
    configs = expand(Grid(("chance", "lbptop-svm"), ("loso-synth-3",), seeds=(0, 1)))
    local = run_sweep(configs, LocalBackend(workers=2), tmp_path / "local")
    with RayBackend(address=ray_head, cpus=1) as ray:
        remote = run_sweep(configs, ray, tmp_path / "ray")
    assert local.trained == remote.trained == 4 * 5 and not remote.failed
    for a, b in zip(local.runs, remote.runs, strict=True):
        assert a.name == b.name
        assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
        assert (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()
        meta = json.loads((b / "run.json").read_text())
        assert meta["status"] == "complete" and len(meta["folds"]) == 5


@pytest.mark.slow  # each array task is a fresh Python that imports torch: ~75 s on the shared box
def test_submitit_local_executor_runs_the_array_and_keeps_logs_in_the_run(tmp_path):
    small_synth(tmp_path / "synth")
    config = RunConfig(model="chance", protocol="loso-synth-3", folds="0-1")
    ref = run_bench(config, runs_dir=tmp_path / "ref")
    backend = SlurmBackend(folder=tmp_path / "runs" / ".slurm", cluster="local", cpus=1, poll_s=0.5)
    res = run_sweep([config], backend, tmp_path / "runs")
    assert res.trained == 2 and not res.failed
    (run,) = res.runs
    assert (run / "metrics.json").read_bytes() == (ref.run_dir / "metrics.json").read_bytes()
    for i in range(2):  # submitit's stdout / stderr of each task, beside the fold's own log
        assert (run / "logs" / f"fold_{i:03d}.slurm.out").exists()
        assert "done in" in (run / "logs" / f"fold_{i:03d}.log").read_text()


def test_sbatch_script_of_the_array(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from mer.cli import app

    backend = SlurmBackend(
        folder=Path("/scratch/runs/.slurm"),
        partition="gpu",
        gpus=1,
        cpus=8,
        mem_gb=64,
        time_min=180,
        max_parallel=16,
        account="lab",
    )
    text = backend.sbatch_text(196)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for want in (
        "#SBATCH --array=0-195%16",
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=64GB",
        "#SBATCH --time=180",
        "#SBATCH --account=lab",
        "#SBATCH --job-name=mer-sweep",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --output=/scratch/runs/.slurm/%A_%a_0_log.out",
    ):
        assert want in lines, (want, text)
    assert any("-m submitit.core._submit /scratch/runs/.slurm" in x and x.startswith("srun") for x in lines)
    assert not any("--gpus-per-node" in x for x in SlurmBackend(gpus=0).sbatch_text(2).splitlines())
    # It is the script submitit's Slurm executor submits for the array (srun faked present).
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    ex = backend._executor()
    ex.parameters["map_count"] = 196
    assert ex._make_submission_file_text(ex._submitit_command_str, "uid") == text
    # The CLI prints it with --dry-run (a plan needs no cluster and no dataset).
    args = ["bench", "sweep", "--model", "chance", "--protocol", "loso-samm-3", "--dry-run"]
    args += ["--backend", "slurm", "--partition", "gpu", "--runs-dir", str(tmp_path)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "#SBATCH --array=0-27%28" in r.output and "#SBATCH --partition=gpu" in r.output
