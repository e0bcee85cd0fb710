"""Fault injection: kills, truncated files, a read-only folder, a full disk.

Each case asserts the message the user reads, the exit code, and that what was already finished keeps
its bytes (SHA-256 before and after). ``mer`` runs in a subprocess (``_inject.py``) wherever a process
must die; in-process (``CliRunner``) where a monkeypatched system call stands in for the fault.
"""

from __future__ import annotations

import errno
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from _faults import kill_when, mer, start, tree_sha
from _synth import small_synth
from typer.testing import CliRunner

from mer.errors import ExitCode
from mer.registrations import load_all

load_all()

#: Cases that run mer in subprocesses (each imports torch: seconds idle, a minute on a loaded machine).
SUBPROCESS = pytest.mark.slow
CHANCE = ["bench", "run", "--model", "chance", "--protocol", "loso-synth-3"]
NET = ["bench", "run", "--model", "fault-net", "--protocol", "loso-synth-3", "--parallel-folds", "1"]


@pytest.fixture
def synth(tmp_path):
    return small_synth(tmp_path / "synth", subjects=4, clips=4)


def _prepared(home: Path) -> list[Path]:
    return sorted(p.parent for p in (home / "prepared" / "synthme").glob("*/meta.json"))


def _home() -> Path:
    from mer.protocols.config import mer_home

    return mer_home()


@SUBPROCESS
def test_kill_during_preparation(synth, tmp_path, fault_row):
    other = mer("data", "prepare", "synthme", "--frames", "4", "--size", "16")
    assert other.code == 0, other.out
    finished = tree_sha(_home() / "prepared")
    marker = tmp_path / "reached"
    proc = start(
        "data", "prepare", "synthme", "--frames", "8", "--size", "24", fault="slow-prepare", marker=marker
    )
    workspace = _home() / "prepared" / "synthme"
    kill_when(proc, lambda: marker.exists() and any(workspace.glob(".*.tmp-*/frames.npy")))
    assert len(_prepared(_home())) == 1  # the killed build published nothing
    assert tree_sha(*[Path(p) for p in finished]) == finished
    again = mer("data", "prepare", "synthme", "--frames", "8", "--size", "24")
    assert again.code == 0 and "16 clips prepared" in again.out, again.out
    assert not list(workspace.glob(".*.tmp-*"))  # the killed builder's workspace was cleared
    assert tree_sha(*[Path(p) for p in finished]) == finished
    said = next(ln for ln in again.out.splitlines() if "clips prepared" in ln)
    fault_row("SIGKILL during `mer data prepare`", "nothing published; rerun: " + said, "-9 → rerun 0", True)


@SUBPROCESS
def test_two_processes_prepare_one_dataset_at_once(synth, tmp_path, fault_row):
    args = ("data", "prepare", "synthme", "--frames", "8", "--size", "24")
    procs = [start(*args, fault="slow-prepare") for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    caches = _prepared(_home())
    assert len(caches) == 1 and not list(caches[0].parent.glob(".*.tmp-*"))
    said = sorted(re.search(r"clips (prepared|already prepared \(no-op\))", o).group(1) for o in outs)
    assert said == ["already prepared (no-op)", "prepared"]  # one built, the other waited and reused it
    assert all(str(caches[0].name) in o.replace("\n", "") for o in outs)
    verify = mer("data", "verify", "synthme")
    assert verify.code == 0 and "1 cache(s) checked, 0 damaged" in verify.out
    fault_row(
        "two `mer data prepare` of one dataset at once",
        "one: prepared; other: already prepared (no-op)",
        0,
        True,
    )


@SUBPROCESS
def test_kill_during_a_fold(synth, tmp_path, fault_row):
    runs = tmp_path / "runs"
    args = [*CHANCE, "--runs-dir", str(runs), "--run-id", "r"]
    folds = runs / "r" / "folds"
    proc = start(*args, fault="slow-fold", marker=tmp_path / "m")
    kill_when(proc, lambda: len(list(folds.glob("fold_*.csv"))) >= 2)
    finished = tree_sha(*sorted(folds.glob("fold_*.csv")))
    assert 2 <= len(finished) < 4
    again = mer(*args)
    assert again.code == 0 and "(4/4 folds)" in again.out, again.out
    intact = all(tree_sha(Path(f))[f] == h for f, h in finished.items())
    assert intact
    said = "rerun resumes: " + again.out.split("run: ")[1].splitlines()[0]
    fault_row("SIGKILL during a fold", said, "-9 → rerun 0", intact)


@SUBPROCESS
def test_kill_during_a_checkpoint_write_and_a_corrupt_checkpoint(synth, tmp_path, fault_row):
    runs = tmp_path / "runs"
    args = [*NET, "--folds", "0-1", "-o", "epochs=2", "--runs-dir", str(runs), "--run-id", "r"]
    marker = tmp_path / "m"
    ckpt = runs / "r" / "work" / "fold_001" / "checkpoint.pt"
    # fold 0 saves checkpoints 1 and 2; fold 1 saves 3 (epoch 0) and dies writing 4 (epoch 1)
    proc = start(*args, fault="hang-save:4", marker=marker)
    kill_when(proc, marker.exists)
    finished = tree_sha(runs / "r" / "folds" / "fold_000.csv", ckpt)
    assert len(finished) == 2  # fold 0's predictions and fold 1's epoch-0 checkpoint
    import torch

    assert torch.load(ckpt, weights_only=True)["epoch"] == 0  # the half-written save did not replace it
    assert tree_sha(*map(Path, finished)) == finished
    shutil.copytree(runs / "r", runs / "r2")  # the same state, for the corrupt-checkpoint case below

    resumed = mer(*args)
    assert resumed.code == 0 and "(2/4 folds)" in resumed.out, resumed.out
    said = next(ln for ln in resumed.out.splitlines() if "resumed from" in ln)
    assert "at epoch 1" in said and "corrupt" not in resumed.out
    assert tree_sha(runs / "r" / "folds" / "fold_000.csv") == {
        k: v for k, v in finished.items() if k.endswith("fold_000.csv")
    }
    fault_row(
        "SIGKILL during a checkpoint write", "checkpoint.pt intact; rerun: " + said, "-9 → rerun 0", True
    )

    ckpt2 = runs / "r2" / "work" / "fold_001" / "checkpoint.pt"
    ckpt2.write_bytes(ckpt2.read_bytes()[:500])  # now a truncated one
    fold0 = tree_sha(runs / "r2" / "folds")
    again = mer(*args[:-1], "r2")
    line = next(ln for ln in again.out.splitlines() if "checkpoint" in ln and "corrupt" in ln)
    assert again.code == 0 and "(2/4 folds)" in again.out, again.out
    assert "restarts from its beginning" in line and "Traceback" not in again.out
    assert tree_sha(runs / "r2" / "folds" / "fold_000.csv") == {
        k: v for k, v in fold0.items() if k.endswith("fold_000.csv")
    }
    fault_row("truncated checkpoint.pt", line, again.code, True)


@SUBPROCESS
def test_kill_during_merge(synth, tmp_path, fault_row):
    runs = tmp_path / "runs"
    assert mer(*CHANCE, "--runs-dir", str(runs), "--folds", "0-1", "--run-id", "a").code == 0
    assert mer(*CHANCE, "--runs-dir", str(runs), "--folds", "2-3", "--run-id", "b").code == 0
    finished = tree_sha(runs / "a", runs / "b")
    marker = tmp_path / "m"
    proc = start("bench", "merge", str(runs / "a"), str(runs / "b"), "--out", str(runs / "m"),
                 fault="hang-write:fold_002", marker=marker)  # fmt: skip
    kill_when(proc, marker.exists)
    assert tree_sha(runs / "a", runs / "b") == finished
    assert not (runs / "m" / "run.json").exists() and not (runs / "m" / "folds" / "fold_002.csv").exists()
    again = mer("bench", "merge", str(runs / "a"), str(runs / "b"), "--out", str(runs / "m"))
    assert again.code == 0 and "(4/4 folds)" in again.out, again.out
    assert tree_sha(runs / "a", runs / "b") == finished
    said = "no half file; rerun: " + again.out.splitlines()[0]
    fault_row("SIGKILL during `mer bench merge`", said, "-9 → rerun 0", True)


@SUBPROCESS
def test_kill_during_leaderboard_build(synth, tmp_path, fault_row):
    runs, lb = tmp_path / "runs", tmp_path / "lb" / "LEADERBOARD.md"
    assert mer(*CHANCE, "--runs-dir", str(runs)).code == 0
    first = mer("leaderboard", "build", "--runs", str(runs), "--out", str(lb))
    assert first.code == 0, first.out
    finished = tree_sha(lb, runs)
    assert (
        mer("bench", "run", "--model", "majority", "--protocol", "loso-synth-3", "--runs-dir", str(runs)).code
        == 0
    )
    runs_now = tree_sha(runs)
    marker = tmp_path / "m"
    proc = start(
        "leaderboard",
        "build",
        "--runs",
        str(runs),
        "--out",
        str(lb),
        fault="hang-write:LEADERBOARD",
        marker=marker,
    )
    kill_when(proc, marker.exists)
    assert tree_sha(lb) == {str(lb): finished[str(lb)]}  # the old table, whole
    assert tree_sha(runs) == runs_now
    again = mer("leaderboard", "build", "--runs", str(runs), "--out", str(lb))
    assert again.code == 0 and "2 runs" in again.out and "majority" in lb.read_text()
    said = "old LEADERBOARD.md kept whole; rerun: " + again.last_error
    fault_row("SIGKILL during `mer leaderboard build`", said, "-9 → rerun 0", True)


@SUBPROCESS
def test_truncated_frames_npy(synth, tmp_path, fault_row):
    runs = tmp_path / "runs"
    assert mer(*CHANCE, "--runs-dir", str(runs), "--folds", "0", "--run-id", "r").code == 0
    finished = tree_sha(runs / "r" / "folds")
    (cache,) = _prepared(_home())
    with open(cache / "frames.npy", "r+b") as f:
        f.truncate(4096)
    bad = mer(*CHANCE, "--runs-dir", str(runs), "--folds", "1", "--run-id", "r")
    assert bad.code == ExitCode.INTEGRITY, bad.out
    assert f"damaged cache {cache}: frames.npy is 4096 bytes" in bad.last_error.replace("\n", "")
    command = re.search(r"rebuild it with `([^`]+)`", bad.out).group(1)
    assert command.startswith("mer data prepare synthme --force")
    assert tree_sha(runs / "r" / "folds") == finished
    rebuilt = mer(*shlex.split(command)[1:])  # the command the message gives really rebuilds
    assert rebuilt.code == 0 and "rebuilt" in rebuilt.out, rebuilt.out
    assert mer(*CHANCE, "--runs-dir", str(runs), "--folds", "1", "--run-id", "r").code == 0
    assert tree_sha(*map(Path, finished)) == finished
    fault_row("truncated frames.npy", bad.last_error, bad.code, True)


@SUBPROCESS
def test_truncated_fold_csv(synth, tmp_path, fault_row):
    runs = tmp_path / "runs"
    args = [*CHANCE, "--runs-dir", str(runs), "--run-id", "r"]
    assert mer(*args).code == 0
    folds = runs / "r" / "folds"
    finished = tree_sha(folds)
    metrics = (runs / "r" / "metrics.json").read_bytes()
    victim = folds / "fold_002.csv"
    victim.write_bytes(victim.read_bytes()[:40])
    merged = mer("bench", "merge", str(runs / "r"), "--out", str(tmp_path / "m"))
    assert (
        merged.code == ExitCode.INTEGRITY and "fold_002.csv does not match the SHA-256" in merged.last_error
    )
    again = mer(*args)
    warn = next(ln for ln in again.out.splitlines() if "fold_002.csv" in ln)
    assert again.code == 0 and "fold 2 is run again" in again.out, again.out
    # the damaged fold redone to the same bytes (its record, fold_002.json, is new); the others untouched
    assert {k: v for k, v in tree_sha(folds).items() if "fold_002.json" not in k} == {
        k: v for k, v in finished.items() if "fold_002.json" not in k
    }
    assert json.loads((runs / "r" / "metrics.json").read_bytes()) == json.loads(metrics)
    fault_row("truncated fold CSV (merge)", merged.last_error, merged.code, True)
    fault_row("truncated fold CSV (resume)", warn.strip(), again.code, True)


@SUBPROCESS
def test_truncated_metrics_json(synth, tmp_path, fault_row):
    runs = tmp_path / "runs"
    args = [*CHANCE, "--runs-dir", str(runs), "--run-id", "r"]
    assert mer(*args).code == 0
    metrics = runs / "r" / "metrics.json"
    good = metrics.read_bytes()
    folds = tree_sha(runs / "r" / "folds")
    metrics.write_bytes(good[:50])
    lb = mer("leaderboard", "build", "--runs", str(runs), "--out", str(tmp_path / "lb" / "L.md"))
    assert lb.code == 0 and "metrics.json: unreadable" in lb.out, lb.out
    again = mer(*args)
    warn = next(ln for ln in again.out.splitlines() if "metrics.json" in ln)
    assert again.code == 0 and "recomputed from the fold files" in warn
    assert json.loads(metrics.read_bytes()) == json.loads(good) and tree_sha(runs / "r" / "folds") == folds
    fault_row("truncated metrics.json", warn.strip(), again.code, True)


def test_read_only_runs_folder(synth, tmp_path, monkeypatch, fault_row):
    import os
    import tempfile

    from mer.cli import app

    runs = tmp_path / "runs"
    done = CliRunner().invoke(app, [*CHANCE, "--runs-dir", str(runs), "--run-id", "done"])
    assert done.exit_code == 0, done.output
    finished = tree_sha(runs)
    os.chmod(runs, 0o555)
    if os.access(runs, os.W_OK):  # root ignores the mode bits: the file system says EROFS instead
        real_mkstemp, real_mkdir = tempfile.mkstemp, Path.mkdir

        def refuse(path):
            if str(path).startswith(str(runs)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

        def mkstemp(*a, dir=None, **k):
            refuse(dir)
            return real_mkstemp(*a, dir=dir, **k)

        def mkdir(self, *a, **k):
            if not self.exists():
                refuse(self)
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(Path, "mkdir", mkdir)
    try:
        r = CliRunner().invoke(app, [*CHANCE, "--runs-dir", str(runs), "--run-id", "new"])
    finally:
        os.chmod(runs, 0o755)
    line = next(ln for ln in r.output.splitlines() if ln.startswith("error:"))
    assert r.exit_code == ExitCode.RUN_FAILED, r.output
    assert f"cannot write {runs / 'new'}" in line and "Traceback" not in r.output
    assert tree_sha(runs) == finished
    fault_row("read-only runs folder", line, r.exit_code, True)


def test_full_disk(synth, tmp_path, monkeypatch, fault_row):
    import mer.protocols.io as mio
    from mer.cli import app

    runs = tmp_path / "runs"
    args = [*CHANCE, "--runs-dir", str(runs), "--run-id", "r"]
    real = mio._write_all

    def write(f, data):
        if "fold_001" in Path(f.name).name:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(mio, "_write_all", write)
    r = CliRunner().invoke(app, args)
    line = next(ln for ln in r.output.splitlines() if ln.startswith("error:"))
    assert r.exit_code == ExitCode.RUN_FAILED and "No space left on device" in line, r.output
    assert "fold_001.csv" in line and "Traceback" not in r.output
    folds = runs / "r" / "folds"
    assert sorted(p.name for p in folds.glob("fold_*.csv")) == ["fold_000.csv"]
    assert not [p for p in folds.iterdir() if p.name.startswith(".")]  # no temporary left behind
    finished = tree_sha(folds)  # fold 0's predictions and record
    meta = json.loads((runs / "r" / "run.json").read_text())
    assert (
        list(meta["folds"]) == ["0"] and meta["folds"]["0"]["sha256"] == finished[str(folds / "fold_000.csv")]
    )
    monkeypatch.setattr(mio, "_write_all", real)  # space again: the run resumes and keeps fold 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "(4/4 folds)" in again.output
    assert tree_sha(*map(Path, finished)) == finished
    fault_row("full disk (ENOSPC on a write)", line, r.exit_code, True)
