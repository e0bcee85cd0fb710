"""The sweep driver: open every run, skip finished folds, hand the rest to an engine, retry failures,
record the ones that keep failing, finalise each run once its folds are accounted for, and rebuild the
leaderboard.

The driver is the only writer of ``run.json``. Killing it loses nothing: finished folds are files, and
the same command skips them (a deep fold that was mid-way resumes from its epoch checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mer.errors import OptionValueError
from mer.protocols.io import atomic_write_json, atomic_write_text
from mer.protocols.runner import OpenRun, RunConfig, finalize, fold_records, open_run
from mer.sweep.backends import Backend
from mer.sweep.jobs import FoldJob, fold_path, now


@dataclass
class FailedFold:
    """A fold that failed on every attempt."""

    run_id: str
    fold: int
    attempts: int
    error: str
    traceback_file: Path


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes:
        runs: Run directories, in plan order.
        trained: Folds trained by this sweep.
        skipped: Folds already finished before it started (not retrained).
        failed: Folds that failed on every attempt.
        retried: Failed attempts that were retried.
        leaderboard: The leaderboard file written (None: not rebuilt).
    """

    runs: list[Path] = field(default_factory=list)
    trained: int = 0
    skipped: int = 0
    failed: list[FailedFold] = field(default_factory=list)
    retried: int = 0
    leaderboard: Path | None = None


def open_runs(
    configs: Sequence[RunConfig], runs_dir: Path, on_prepare: Callable[[int, int], None] | None = None
) -> list[OpenRun]:
    """Open every run of the plan (prepares each dataset + recipe once; later runs hit the cache).

    Raises:
        OptionValueError: two configs of the plan are the same run.
    """
    runs = [open_run(c, runs_dir, None, on_prepare) for c in configs]
    seen: dict[Path, RunConfig] = {}
    for c, r in zip(configs, runs, strict=True):
        if r.run_dir in seen:
            raise OptionValueError(f"the sweep lists run {r.run_dir.name} twice ({seen[r.run_dir]} and {c})")
        seen[r.run_dir] = c
    return runs


def fold_jobs(runs: Sequence[OpenRun], tensorboard: bool = False) -> list[FoldJob]:
    """One job per requested fold without predictions, run by run."""
    return [
        FoldJob(r.config, str(r.run_dir.parent), r.run_dir.name, i, tensorboard=tensorboard)
        for r in runs
        for i in r.todo()
    ]


def _write_meta(run: OpenRun) -> None:
    atomic_write_json(run.run_dir / "run.json", run.meta)


def _finish(run: OpenRun) -> None:
    """Finalise a run whose requested folds are all done or failed: predictions.csv, metrics.json."""
    run.meta["folds"].update(fold_records(run))
    if any(run.fold_file(i).exists() for i in range(len(run.folds))):
        finalize(run.run_dir, run.meta, run.protocol)
    else:
        run.meta["status"] = "failed"
        run.meta["finished"] = now()
        _write_meta(run)


def run_sweep(
    configs: Sequence[RunConfig],
    backend: Backend,
    runs_dir: Path = Path("runs"),
    retries: int = 0,
    tensorboard: bool = False,
    leaderboard: Path | None = None,
    on_event: Callable[[str, FoldJob | None, dict[str, Any]], None] | None = None,
    on_prepare: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run every fold of every run in ``configs`` that is not finished yet, on ``backend``.

    Args:
        configs: The runs (:func:`mer.sweep.plan.expand`).
        backend: The engine.
        runs_dir: Parent of the run directories (seen by every worker).
        retries: Times a failed fold job is tried again (each retry round is one more call of
            ``backend.run``: for Slurm, one more array).
        tensorboard: Folds also write TensorBoard events.
        leaderboard: Rebuild this leaderboard file from ``runs_dir`` at the end (None: do not).
        on_event: ``(kind, job, outcome)`` for "planned" (job None; ``jobs``, ``skipped``), "done",
            "skipped", "retry", "failed" and "finalised" (job None; ``run_dir``).
        on_prepare: Preparation progress ``(done, total)``.

    Returns:
        A :class:`SweepResult`; failed folds are recorded in their run (``folds/fold_NNN.failed.txt``
        with every attempt's traceback, and ``run.json``), never raised here.
    """
    emit = on_event or (lambda kind, job, outcome: None)
    runs = open_runs(configs, Path(runs_dir), on_prepare)
    by_dir = {r.run_dir: r for r in runs}
    jobs = fold_jobs(runs, tensorboard)
    result = SweepResult(runs=[r.run_dir for r in runs])
    result.skipped = sum(len(r.wanted) for r in runs) - len(jobs)
    left = {r.run_dir: len(r.todo()) for r in runs}
    emit("planned", None, {"jobs": len(jobs), "skipped": result.skipped})
    for r in runs:  # the record exists (status "running") before any job starts
        r.meta["folds"].update(fold_records(r))
        if left[r.run_dir] == 0:
            if not (r.meta.get("status") == "complete" and (r.run_dir / "metrics.json").exists()):
                _finish(r)
                emit("finalised", None, {"run_dir": str(r.run_dir)})
        else:
            r.meta["status"], r.meta["finished"] = "running", None
            _write_meta(r)

    def account(job: FoldJob) -> None:
        run = by_dir[job.run_dir]
        left[run.run_dir] -= 1
        if left[run.run_dir] == 0:
            _finish(run)
            emit("finalised", None, {"run_dir": str(run.run_dir)})

    again: list[FoldJob] = []  # failed attempts with retries left: the next round

    def on_done(job: FoldJob, outcome: dict[str, Any]) -> None:
        run = by_dir[job.run_dir]
        status = outcome.get("status")
        if status in ("done", "skipped"):
            if status == "done":
                result.trained += 1
                run.meta["folds"][str(job.fold)] = {
                    k: v for k, v in outcome.items() if k not in ("status", "host")
                } | {"status": "done"}
                _write_meta(run)
            emit(status, job, outcome)
            account(job)
            return
        _append_traceback(job, outcome)
        if job.attempt <= retries:
            result.retried += 1
            emit("retry", job, outcome)
            again.append(replace(job, attempt=job.attempt + 1))
            return
        tb_file = fold_path(job.run_dir, job.fold, ".failed.txt")
        run.meta["folds"][str(job.fold)] = {
            "name": run.folds[job.fold].name,
            "status": "failed",
            "attempts": job.attempt,
            "error": outcome.get("error", ""),
            "traceback": str(tb_file.relative_to(run.run_dir)),
        }
        _write_meta(run)
        result.failed.append(
            FailedFold(run.run_dir.name, job.fold, job.attempt, outcome.get("error", ""), tb_file)
        )
        emit("failed", job, outcome)
        account(job)

    pending = jobs
    while pending:
        backend.run(pending, on_done)
        pending, again[:] = list(again), []

    if leaderboard is not None:
        from mer.leaderboard.build import build_leaderboard

        result.leaderboard = build_leaderboard(Path(runs_dir), leaderboard).out
    return result


def _append_traceback(job: FoldJob, outcome: dict[str, Any]) -> None:
    """Keep every attempt's traceback in ``folds/fold_NNN.failed.txt`` (removed once the fold succeeds)."""
    path = fold_path(job.run_dir, job.fold, ".failed.txt")
    old = path.read_text() if path.exists() else ""
    head = f"=== attempt {job.attempt} on {outcome.get('host', '?')} at {now()}: {outcome.get('error', '')}\n"
    atomic_write_text(path, old + head + str(outcome.get("traceback", "")) + "\n")
