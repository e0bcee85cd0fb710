"""``mer leaderboard show``: a quick table of the runs in a folder (the full builder is build.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunRow:
    """One finished (or partial) run, as a table row."""

    protocol: str
    model: str
    size: str
    select: str
    folds: str
    uf1: float | None
    uar: float | None
    acc: float | None
    run_id: str


def collect_rows(runs_dir: Path) -> list[RunRow]:
    """Every run under ``runs_dir`` with its headline metrics; partial runs get blank metrics."""
    rows = []
    for meta_path in sorted(Path(runs_dir).glob("*/run.json")):
        meta = json.loads(meta_path.read_text())
        metrics_path = meta_path.parent / "metrics.json"
        m = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        done = int(m.get("folds_done", len(meta.get("folds", {}))))
        total = int(meta.get("n_folds", 0))
        complete = m and done == total
        rows.append(
            RunRow(
                protocol=meta.get("protocol_label") or meta["protocol"],
                model=meta["model"],
                size=meta["size"],
                select=meta.get("select", "last"),
                folds=f"{done}/{total}",
                uf1=m.get("uf1") if complete else None,
                uar=m.get("uar") if complete else None,
                acc=m.get("acc") if complete else None,
                run_id=meta["run_id"],
            )
        )
    rows.sort(key=lambda r: (r.protocol, -(r.uf1 if r.uf1 is not None else -1), r.model))
    return rows


def format_rows(rows: list[RunRow]) -> str:
    """A markdown table; the oracle selection rule is marked †."""
    from tabulate import tabulate

    def num(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    table = [
        [
            r.protocol,
            r.model + (" †" if r.select == "oracle" else ""),
            r.size,
            num(r.uf1),
            num(r.uar),
            num(r.acc),
            r.folds,
            r.run_id,
        ]
        for r in rows
    ]
    headers = ["protocol", "model", "size", "UF1", "UAR", "ACC", "folds", "run"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
