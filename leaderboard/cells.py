"""The format-neutral table model that every renderer (md, csv, json, latex) reads.

A :class:`Table` is a title, ordered :class:`Column` s and rows of cells. A cell is one of:

- ``None``: blank (a measured metric of a run whose folds are not all done, or nothing to say);
- ``str``: text as is (``"N/A"``, ``"—"`` for a metric the paper's table does not show);
- :class:`Metric`: a number with an optional std over folds;
- :class:`Link`: text pointing at a file (a confusion-matrix PNG).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIGITS = 4
NOT_SHOWN = "—"


@dataclass(frozen=True)
class Metric:
    """A metric value (fraction) and, for measured runs, the std of the per-fold metric."""

    value: float
    std: float | None = None


@dataclass(frozen=True)
class Link:
    """``text`` linking to ``target`` (a path relative to the output file)."""

    text: str
    target: str


Cell = str | Metric | Link | None


@dataclass(frozen=True)
class Column:
    """A column: ``key`` for csv/json, ``header`` for md/latex."""

    key: str
    header: str


@dataclass
class Table:
    """One rendered table.

    Attributes:
        key: Stable identifier ("loso-samm-3", "loso-samm-3/per-class", "table-viii").
        title: Heading.
        columns: Columns in display order.
        rows: One dict per row, column key → cell (missing keys are blank).
        notes: Lines shown under the table.
        level: Markdown heading level.
    """

    key: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    level: int = 2


def fmt_number(x: float) -> str:
    """Fixed format for every number in every table."""
    return f"{x:.{DIGITS}f}"


def metric(value: object, std: object = None) -> Metric | None:
    """A :class:`Metric` from JSON values, or None when ``value`` is missing."""
    if value is None:
        return None
    return Metric(float(value), None if std is None else float(std))
