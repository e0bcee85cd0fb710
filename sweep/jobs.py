"""One fold job: what runs on a worker (a local process, a Ray task, a Slurm array task).

A job opens its run (the prepared data, cached per worker process), trains one fold with
:func:`mer.protocols.runner.train_fold` and writes only that fold's files. A fold's own failure is
returned as an outcome with its traceback, not raised, so that every engine reports it the same way.
While it trains, ``folds/fold_NNN.running.json`` says where (host, pid) and since when; its log goes to
``logs/fold_NNN.log``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mer.protocols.io import atomic_write_json
from mer.protocols.runner import OpenRun, RunConfig, open_run, train_fold


@dataclass(frozen=True)
class FoldJob:
    """One fold of one run.

    Attributes:
        config: The run's configuration (``folds`` as the run was asked, not this job's fold).
        runs_dir: Parent folder of the run directories (a path every worker sees).
        run_id: The run's folder name.
        fold: Fold index.
        attempt: 1 for the first try, 2 for the first retry, ...
        threads: Torch threads of the job (0: leave torch's default).
        tensorboard: Also write TensorBoard events of the fold's epochs.
    """

    config: RunConfig
    runs_dir: str
    run_id: str
    fold: int
    attempt: int = 1
    threads: int = 0
    tensorboard: bool = False

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_id

    @property
    def key(self) -> tuple[str, int]:
        return (str(self.run_dir), self.fold)

    def label(self) -> str:
        return f"{self.run_id} fold {self.fold}"


def fold_path(run_dir: Path, fold: int, suffix: str) -> Path:
    """``<run_dir>/folds/fold_NNN<suffix>`` (``.csv``, ``.json``, ``.running.json``, ``.failed.txt``...)."""
    return Path(run_dir) / "folds" / f"fold_{fold:03d}{suffix}"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


_OPEN: dict[tuple[str, str], OpenRun] = {}  # per worker process: a run's data is loaded once


def _open(job: FoldJob) -> OpenRun:
    key = (repr(job.config), str(job.run_dir))
    if key not in _OPEN:
        _OPEN[key] = open_run(job.config, Path(job.runs_dir), job.run_id)
    return _OPEN[key]


def failed_outcome(job: FoldJob, error: str, tb: str) -> dict[str, Any]:
    """The outcome of a job that did not produce its fold (also used by engines for a lost worker)."""
    return {"status": "failed", "error": error, "traceback": tb, "host": socket.gethostname()}


def run_fold_job(job: FoldJob) -> dict[str, Any]:
    """Train one fold (skipped when its predictions exist); returns ``{"status": "done" | "skipped" |
    "failed", ...}``. Runs on the worker."""
    from mer.registrations import load_all

    load_all()
    if fold_path(job.run_dir, job.fold, ".csv").exists():
        return {"status": "skipped", "host": socket.gethostname()}
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    marker = fold_path(job.run_dir, job.fold, ".running.json")
    info = {"started": now(), "host": socket.gethostname(), "pid": os.getpid(), "attempt": job.attempt}
    atomic_write_json(marker, info)
    logger = logging.getLogger("mer")
    level, handler = logger.level, None
    start = time.perf_counter()
    try:  # from here on, whatever fails is this fold's failure (and the marker goes away)
        log_file = job.run_dir / "logs" / f"fold_{job.fold:03d}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.info("%s: attempt %d on %s pid %d", job.label(), job.attempt, info["host"], info["pid"])
        entry = train_fold(_open(job), job.fold, job.tensorboard)
        fold_path(job.run_dir, job.fold, ".failed.txt").unlink(missing_ok=True)
        logger.info("%s: done in %.1f s", job.label(), time.perf_counter() - start)
        return {"status": "done", **entry, "host": info["host"]}
    except Exception as e:  # a fold's failure is data for the driver (retried, then recorded)
        logger.exception("%s failed", job.label())
        return failed_outcome(job, f"{type(e).__name__}: {e}", traceback.format_exc())
    finally:
        marker.unlink(missing_ok=True)
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)


def job_dict(job: FoldJob) -> dict[str, Any]:
    """A job as plain JSON (dry-run listings)."""
    d = asdict(job)
    d["config"] = asdict(job.config)
    return d
