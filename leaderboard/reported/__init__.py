"""The papers' reported rows, read from the CSV files beside this module (``leaderboard/reported/``).

A package (not a plain module) so that setuptools ships the CSV files with it.

``main.csv`` holds Tables IV–VII of MER-CLIP and the Micro-AU CLIP figures (SPEC A.7, B.7), one line per
(method, protocol), or per (method, protocol, part) for a composite set's per-dataset figures (the rows of
Table IV that are MEGC2019 composite parts sit under ``megc2019`` with ``part`` casme2 / samm);
``ablations.csv`` holds Tables VIII–XI, one line per (table row, protocol). Cells are
fractions as printed in the paper; ``N/A`` is the paper's own N/A; an empty cell is a metric the table does
not show.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mer.errors import BadInputError

DATA_DIR = Path(__file__).resolve().parent

#: Metric keys a reported row may carry, in file order.
METRICS = ("uf1", "uar", "acc", "wf1", "mean_f1")

NA = "N/A"

Value = float | str | None
"""A reported cell: a number, ``"N/A"`` (the paper's N/A) or ``None`` (not shown in that table)."""


@dataclass(frozen=True)
class ReportedRow:
    """One method's reported numbers on one protocol.

    Attributes:
        table: Paper table ("IV" … "VII", or "B.7" for Micro-AU CLIP).
        protocol: mer protocol key ("loso-samm-3"); a key mer does not define for unstated settings.
        method: Method name as printed in the paper.
        year: Publication year as printed.
        model: The mer model that reproduces the row ("merclip"), or "" when mer has none.
        metrics: Metric key → value (see :data:`Value`); only keys the file fills.
        citation: Citation key (``citations.csv``).
        source: Citation key of the paper the number is copied from.
        note: Free text shown under the table.
        status: Always "reported".
    """

    table: str
    protocol: str
    method: str
    year: str
    model: str
    metrics: dict[str, Value] = field(hash=False)
    citation: str
    source: str
    note: str = ""
    status: str = "reported"


@dataclass(frozen=True)
class AblationRow:
    """One row of an ablation table (VIII–XI) on one protocol.

    Attributes:
        table: "VIII", "IX", "X" or "XI".
        row: 1-based row number in the paper's table.
        labels: The row's setting cells (e.g. ``("✓", "✓", "✗", "✗")``).
        model: The mer variant that reproduces the row ("merclip-no-eim").
        protocol: "dfme-test-a", "dfme-test-b" or "loso-samm-3".
        uf1: Reported UF1.
        uar: Reported UAR.
        citation: Citation key.
        status: Always "reported".
    """

    table: str
    row: int
    labels: tuple[str, ...]
    model: str
    protocol: str
    uf1: float
    uar: float
    citation: str
    status: str = "reported"


def _value(text: str, path: Path, line: int, column: str) -> Value:
    text = text.strip()
    if not text:
        return None
    if text == NA:
        return NA
    try:
        return float(text)
    except ValueError:
        raise BadInputError(f"{path}:{line}: column {column!r}: {text!r} is not a number or N/A") from None


def _read(name: str) -> tuple[Path, list[dict[str, str]]]:
    path = DATA_DIR / name
    with path.open(newline="", encoding="utf-8") as f:
        return path, list(csv.DictReader(f))


@lru_cache(maxsize=1)
def reported_rows() -> tuple[ReportedRow, ...]:
    """All rows of ``main.csv`` in file order (the papers' row order).

    A line with a ``part`` (a composite set's source dataset, e.g. ``casme2`` under ``megc2019``) gives
    metrics keyed ``casme2:uf1``; consecutive lines of one method, table and protocol make one row.
    """
    path, lines = _read("main.csv")
    rows: list[ReportedRow] = []
    for i, r in enumerate(lines, start=2):
        part = (r.get("part") or "").strip()
        metrics = {(f"{part}:{m}" if part else m): _value(r[m], path, i, m) for m in METRICS}
        metrics = {k: v for k, v in metrics.items() if v is not None}
        last = rows[-1] if rows else None
        if last is not None and (last.table, last.protocol, last.method) == (
            r["table"],
            r["protocol"],
            r["method"],
        ):
            clash = sorted(set(metrics) & set(last.metrics))
            if clash:
                raise BadInputError(f"{path}:{i}: {r['method']} gives {', '.join(clash)} twice")
            last.metrics.update(metrics)
            continue
        rows.append(
            ReportedRow(
                table=r["table"],
                protocol=r["protocol"],
                method=r["method"],
                year=r["year"],
                model=r["model"],
                metrics=metrics,
                citation=r["citation"],
                source=r["source"],
                note=r["note"],
                status=r["status"],
            )
        )
    return tuple(rows)


@lru_cache(maxsize=1)
def ablation_rows() -> tuple[AblationRow, ...]:
    """All rows of ``ablations.csv`` in file order."""
    path, lines = _read("ablations.csv")
    rows = []
    for i, r in enumerate(lines, start=2):
        uf1, uar = _value(r["uf1"], path, i, "uf1"), _value(r["uar"], path, i, "uar")
        if not isinstance(uf1, float) or not isinstance(uar, float):
            raise BadInputError(f"{path}:{i}: ablation rows need numeric uf1 and uar")
        rows.append(
            AblationRow(
                table=r["table"],
                row=int(r["row"]),
                labels=tuple(r["labels"].split(";")),
                model=r["model"],
                protocol=r["protocol"],
                uf1=uf1,
                uar=uar,
                citation=r["citation"],
                status=r["status"],
            )
        )
    return tuple(rows)


@lru_cache(maxsize=1)
def citations() -> dict[str, str]:
    """Citation key → reference text."""
    _, lines = _read("citations.csv")
    return {r["key"]: r["reference"] for r in lines}
