"""Read run directories (``run.json`` + ``metrics.json``) into :class:`RunRecord` objects.

A run directory is any folder under the runs root that holds a ``run.json`` (``runs/<id>/`` or nested, e.g.
``runs/demo/<id>/``). ``metrics.json`` exists only once every requested fold is done; a run whose folds do
not cover the protocol is *incomplete* and its metrics are never shown (no partial means).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mer.errors import BadInputError

REQUIRED = ("run_id", "model", "protocol")


@dataclass
class RunRecord:
    """What the leaderboard needs from one run directory.

    Attributes:
        path: The run directory.
        run: Parsed ``run.json``.
        metrics: Parsed ``metrics.json``, or None when absent.
    """

    path: Path
    run: dict[str, Any]
    metrics: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def model(self) -> str:
        return str(self.run["model"])

    @property
    def protocol(self) -> str:
        return str(self.run["protocol"])

    @property
    def data_id(self) -> str:
        """Fingerprint id of the data the run saw ("" for a run from before fingerprints)."""
        return str((self.run.get("data_fingerprint") or {}).get("id") or "")

    @property
    def data_name(self) -> str:
        """``synthme``, ``synthme@<id>`` for a non-default generation, "" when not recorded."""
        return str(self.run.get("data_name") or "")

    @property
    def task(self) -> str:
        return str(self.run.get("task") or "emotion")

    @property
    def n_folds(self) -> int | None:
        n = self.run.get("n_folds")
        if n is None and self.metrics:
            n = self.metrics.get("n_folds")
        return int(n) if n is not None else None

    @property
    def folds_done(self) -> int:
        folds = self.run.get("folds") or {}
        done = sum(1 for f in folds.values() if isinstance(f, dict) and f.get("status") == "done")
        if self.metrics and self.metrics.get("folds_done") is not None:
            done = max(done, int(self.metrics["folds_done"]))
        return done

    @property
    def complete(self) -> bool:
        """All folds of the protocol done and metrics written (a ``--folds`` subset never is)."""
        n = self.n_folds
        return (
            self.metrics is not None
            and self.run.get("status") == "complete"
            and n is not None
            and self.folds_done >= n
        )

    @property
    def folds_text(self) -> str:
        n = self.n_folds
        return f"{self.folds_done}/{n if n is not None else '?'}"

    @property
    def select(self) -> str:
        return str(self.run.get("select") or "last")

    @property
    def oracle(self) -> bool:
        return self.select == "oracle"

    @property
    def reconstruction(self) -> bool:
        return bool(self.run.get("reconstruction"))

    @property
    def date(self) -> str:
        stamp = self.run.get("finished") or self.run.get("created") or ""
        return str(stamp)[:10]

    @property
    def commit(self) -> str:
        return str(self.run.get("git_commit") or "")[:7]

    @property
    def sort_key(self) -> tuple:
        """Stable order: model, size, recipe, selection rule, seed, run id."""
        r = self.run
        return (self.model, str(r.get("size", "")), str(r.get("recipe_name", "")), self.select,
                int(r.get("seed") or 0), self.run_id)  # fmt: skip

    @property
    def recency_key(self) -> tuple:
        """Later finished first when sorted descending; ties broken by run id."""
        return (self.complete, str(self.run.get("finished") or self.run.get("created") or ""), self.run_id)


def _load_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise BadInputError("top level is not an object")
    return data


def collect_runs(runs_dir: str | Path) -> tuple[list[RunRecord], list[str]]:
    """Read every run directory under ``runs_dir``.

    Args:
        runs_dir: Root folder; searched recursively for ``run.json``. A missing folder gives no runs.

    Returns:
        The runs sorted by :attr:`RunRecord.sort_key`, and one message per run directory that could not
        be read (file and reason); a bad run never stops the build.
    """
    root = Path(runs_dir)
    runs: list[RunRecord] = []
    skipped: list[str] = []
    if not root.is_dir():
        return runs, skipped
    seen: dict[str, Path] = {}
    for run_json in sorted(root.rglob("run.json")):
        try:
            run = _load_json(run_json)
        except (OSError, ValueError) as e:
            skipped.append(f"{run_json}: unreadable ({e})")
            continue
        missing = [k for k in REQUIRED if not run.get(k)]
        if missing:
            skipped.append(f"{run_json}: missing field(s) {', '.join(missing)}")
            continue
        metrics = None
        metrics_json = run_json.parent / "metrics.json"
        if metrics_json.is_file():
            try:
                metrics = _load_json(metrics_json)
            except (OSError, ValueError) as e:
                skipped.append(f"{metrics_json}: unreadable ({e}); run shown without metrics")
        record = RunRecord(path=run_json.parent, run=run, metrics=metrics)
        if record.run_id in seen:
            skipped.append(f"{run_json}: run id {record.run_id!r} already read from {seen[record.run_id]}")
            continue
        seen[record.run_id] = run_json
        runs.append(record)
    runs.sort(key=lambda r: r.sort_key)
    return runs, skipped
