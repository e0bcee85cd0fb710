"""``mer bench status``: finished / running / failed folds of runs, with elapsed time and an ETA.

Everything is read from the run directories (``run.json``, ``folds/fold_NNN.csv``, ``.json``,
``.running.json``, ``.failed.txt``, ``.epochs.jsonl``), so it works while a sweep runs on any engine and
after it was killed. A running fold's ETA comes from its epochs (time per epoch so far × epochs left),
else from the mean time of the run's finished folds; the run's ETA spreads the remaining work over the
folds running now (at least one).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mer.errors import MissingInputError
from mer.sweep.jobs import fold_path
from mer.zoo.watch import read_epochs


@dataclass
class FoldState:
    """One fold's state: "done", "running", "interrupted" (its worker on this host is gone), "failed",
    "pending"."""

    index: int
    name: str
    state: str
    seconds: float | None = None
    epoch: int | None = None
    epochs: int | None = None
    eta_s: float | None = None
    host: str | None = None
    error: str | None = None


@dataclass
class RunStatus:
    """One run's progress."""

    run_dir: Path
    status: str
    n_folds: int
    folds: list[FoldState] = field(default_factory=list)
    elapsed_s: float | None = None
    eta_s: float | None = None

    def count(self, state: str) -> int:
        return sum(f.state == state for f in self.folds)


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _alive(info: dict[str, Any]) -> bool:
    """False only when the worker ran on this host and its process is gone."""
    if info.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError):
        return True
    return True


def run_status(run_dir: Path, now: dt.datetime | None = None) -> RunStatus:
    """Read a run directory's progress.

    Raises:
        MissingInputError: ``run_dir`` holds no ``run.json``.
    """
    run_dir = Path(run_dir)
    meta_path = run_dir / "run.json"
    if not meta_path.exists():
        raise MissingInputError(f"not a run directory (no run.json): {run_dir}")
    meta = json.loads(meta_path.read_text())
    now = now or dt.datetime.now(dt.timezone.utc)
    records = meta.get("folds", {})
    out = RunStatus(run_dir, meta.get("status", "?"), int(meta.get("n_folds", 0)))
    wanted = meta.get("folds_requested") or list(range(out.n_folds))
    for i in wanted:
        rec = records.get(str(i), {})
        name = rec.get("name", f"fold {i}")
        side = fold_path(run_dir, i, ".json")
        if fold_path(run_dir, i, ".csv").exists():
            rec = json.loads(side.read_text()) if side.exists() else rec
            out.folds.append(FoldState(i, rec.get("name", name), "done", rec.get("seconds")))
            continue
        marker = fold_path(run_dir, i, ".running.json")
        if marker.exists():
            info = json.loads(marker.read_text())
            rows = read_epochs(fold_path(run_dir, i, ".epochs.jsonl"))
            started = _time(info.get("started"))
            state = FoldState(
                i,
                name,
                "running" if _alive(info) else "interrupted",
                (now - started).total_seconds() if started else None,
                host=info.get("host"),
            )
            if rows:
                state.epoch, state.epochs = int(rows[-1]["epoch"]) + 1, int(rows[-1]["epochs"])
            out.folds.append(state)
            continue
        if rec.get("status") == "failed" or fold_path(run_dir, i, ".failed.txt").exists():
            out.folds.append(FoldState(i, name, "failed", error=rec.get("error")))
            continue
        out.folds.append(FoldState(i, name, "pending"))
    done_s = [f.seconds for f in out.folds if f.state == "done" and f.seconds is not None]
    mean = sum(done_s) / len(done_s) if done_s else None
    for f in out.folds:
        if f.state != "running" or f.seconds is None:
            continue
        if f.epoch and f.epochs:
            f.eta_s = f.seconds / f.epoch * (f.epochs - f.epoch)
        elif mean is not None:
            f.eta_s = max(0.0, mean - f.seconds)
    created, finished = _time(meta.get("created")), _time(meta.get("finished"))
    if created:
        out.elapsed_s = (
            (finished if out.status != "running" and finished else now) - created
        ).total_seconds()
    running = [f for f in out.folds if f.state == "running"]
    pending = out.count("pending") + out.count("interrupted")
    if pending == 0 and not running:
        out.eta_s = 0.0
    elif mean is not None and all(f.eta_s is not None for f in running):
        out.eta_s = (sum(f.eta_s for f in running) + pending * mean) / max(1, len(running))
    return out


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories among ``paths``: each one itself, or every run found below it.

    Raises:
        MissingInputError: a path that is neither a run nor a folder holding runs.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "run.json").exists():
            out.append(p)
            continue
        found = sorted(q.parent for q in p.rglob("run.json")) if p.is_dir() else []
        if not found:
            raise MissingInputError(f"no run directory (run.json) at or below {p}")
        out.extend(found)
    return list(dict.fromkeys(out))


def format_seconds(s: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; "?" when unknown."""
    if s is None:
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
