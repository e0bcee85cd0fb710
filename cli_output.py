"""How list and info commands print: a rich table on a terminal, plain text in a pipe, JSON on request.

A rich table squeezes itself into the terminal width and truncates cells; in a pipe (``mer models
list | grep ...``) that loses names. So a table goes out as plain aligned text, never truncated, when
stdout is not a terminal, and as JSON (one list of records) with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def cell(value: Any) -> str:
    """A record value as table text (lists joined with ", ", None as "-")."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def plain_table(columns: Sequence[str], records: Sequence[dict[str, Any]]) -> str:
    """Left-aligned columns separated by two spaces; cells are never cut."""
    rows = [[cell(r.get(c)) for c in columns] for r in records]
    widths = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def emit_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    records: Sequence[dict[str, Any]],
    as_json: bool = False,
    show_title: bool = False,
) -> None:
    """Print ``records`` (dicts keyed by ``columns``) as JSON, plain text or a rich table.

    Args:
        console: Where it goes (its ``is_terminal`` decides rich vs plain).
        title: Table title (rich tables; plain text only with ``show_title``).
        columns: Keys shown, in order.
        records: One dict per row; JSON output keeps every key of each record.
        as_json: Print ``json.dumps(records)`` instead of a table.
        show_title: Print the title above a plain table (commands that print several tables).
    """
    if as_json:
        console.file.write(json.dumps(list(records), indent=2, default=str) + "\n")
        return
    if not console.is_terminal:
        text = plain_table(columns, records)
        console.file.write((f"{title}\n{text}" if show_title else text) + "\n")
        return
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in records:
        t.add_row(*(cell(r.get(c)) for c in columns))
    console.print(t)


def emit_json(console: Console, data: Any) -> None:
    """``data`` as indented JSON on ``console``'s stream (no rich markup or wrapping)."""
    console.file.write(json.dumps(data, indent=2, default=str) + "\n")
