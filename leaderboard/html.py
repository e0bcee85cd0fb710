"""HTML pieces of the static leaderboard site: escaping, table cells, a generic record view and inline SVG.

Everything returns strings built from sorted or file-ordered data with fixed number formats, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mer.leaderboard.cells import Cell, Link, Metric, fmt_number


def esc(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def page(title: str, body: Iterable[str], root: str = "") -> str:
    """A complete HTML document; ``root`` is the relative path to the site's top folder ("" or "../")."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="mer leaderboard">',
        f"<title>{esc(title)}</title>",
        f'<link rel="stylesheet" href="{root}site.css">',
        f'<script src="{root}site.js" defer></script>',
        "</head>",
        "<body>",
        f'<nav><a href="{root}index.html">Leaderboard</a>'
        f'<a href="{root}compare.html">Compare two runs</a></nav>',
    ]
    return "\n".join([*head, *body, "</body>", "</html>", ""])


def cell_html(cell: Cell, href: str | None = None) -> tuple[str, str]:
    """``(td attributes, inner html)`` of a cell; a metric carries its value in ``data-v`` for sorting."""
    if cell is None:
        return "", ""
    if isinstance(cell, Metric):
        text = fmt_number(cell.value)
        if cell.std is not None:
            text += f' <span class="muted">± {fmt_number(cell.std)}</span>'
        return f' class="num" data-v="{fmt_number(cell.value)}"', text
    if isinstance(cell, Link):
        return "", f'<a href="{esc(cell.target)}">{esc(cell.text)}</a>'
    inner = esc(cell)
    if href:
        inner = f'<a href="{esc(href)}">{inner}</a>'
    return "", inner


def _scalar(value: Any) -> str:
    if value is None:
        return '<span class="muted">null</span>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return esc(repr(value))
    return esc(value)


def record_html(data: Any, depth: int = 0) -> str:
    """Any JSON value as nested key/value tables, keys in the file's order; fields mer does not know yet
    show like the others, so a new field in ``run.json`` needs no change here."""
    if isinstance(data, Mapping):
        if not data:
            return '<span class="muted">{}</span>'
        rows = [f"<tr><th>{esc(k)}</th><td>{record_html(v, depth + 1)}</td></tr>" for k, v in data.items()]
        return '<table class="record">' + "".join(rows) + "</table>"
    if isinstance(data, list):
        if not data:
            return '<span class="muted">[]</span>'
        if all(not isinstance(v, (Mapping, list)) for v in data):
            return ", ".join(_scalar(v) for v in data)
        rows = [f"<tr><th>{i}</th><td>{record_html(v, depth + 1)}</td></tr>" for i, v in enumerate(data)]
        return '<table class="record">' + "".join(rows) + "</table>"
    return _scalar(data)


def simple_table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table whose cells are already HTML."""
    out = [f'<table class="{cls}">' if cls else "<table>", "<thead><tr>"]
    out += [f"<th>{esc(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return "".join(out)


def _f(x: float) -> str:
    return f"{x:.1f}"


def strip_plot(values: Sequence[tuple[str, float]], label: str = "UF1") -> str:
    """Per-fold values on a 0..1 axis: one dot per fold (name in its tooltip), box of the quartiles and
    the median, as inline SVG."""
    width, height, left, right = 520, 96, 40, 16
    span = width - left - right

    def x(v: float) -> float:
        return left + max(0.0, min(1.0, v)) * span

    parts = [
        f'<svg class="strip" role="img" aria-label="per-fold {esc(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="70" x2="{width - right}" y2="70" stroke="#888"/>',
    ]
    for tick in range(0, 11, 2):
        tx = x(tick / 10)
        parts.append(f'<line x1="{_f(tx)}" y1="70" x2="{_f(tx)}" y2="74" stroke="#888"/>')
        parts.append(f'<text x="{_f(tx)}" y="88" text-anchor="middle">{tick / 10:.1f}</text>')
    parts.append(f'<text x="2" y="40">{esc(label)}</text>')
    vals = sorted(v for _, v in values)
    if vals:
        import numpy as np

        q1, med, q3 = (float(q) for q in np.percentile(vals, [25, 50, 75]))
        parts.append(
            f'<rect x="{_f(x(q1))}" y="22" width="{_f(max(x(q3) - x(q1), 1.0))}" height="36" '
            'fill="#dbe9fb" stroke="#4c8bd6"/>'
        )
        parts.append(f'<line x1="{_f(x(med))}" y1="22" x2="{_f(x(med))}" y2="58" stroke="#1f5fa8" '
                     'stroke-width="2"/>')  # fmt: skip
    for i, (name, v) in enumerate(values):
        cy = 28 + (i * 7) % 26  # a fixed jitter so that equal values stay visible
        parts.append(
            f'<circle cx="{_f(x(v))}" cy="{cy}" r="4" fill="#d9534f" fill-opacity="0.8">'
            f"<title>{esc(name)}: {fmt_number(v)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def confusion_html(matrix: Sequence[Sequence[float]], classes: Sequence[str]) -> str:
    """The confusion matrix as a table (rows true, columns predicted), shaded by the share of its row."""
    n = len(matrix)
    names = list(classes) if len(classes) == n else [str(i) for i in range(n)]
    out = ['<table class="confusion"><thead><tr><th>true \\ predicted</th>']
    out += [f"<th>{esc(c)}</th>" for c in names]
    out.append("</tr></thead><tbody>")
    for name, row in zip(names, matrix, strict=True):
        total = sum(row) or 1
        out.append(f"<tr><th>{esc(name)}</th>")
        for v in row:
            share = v / total
            colour = "#fff" if share > 0.5 else "#000"
            out.append(
                f'<td style="background:rgba(31,95,168,{share:.3f});color:{colour}" '
                f'title="{share:.1%} of {esc(name)}">{int(v)}</td>'
            )
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def bar(value: float | None) -> str:
    """A number with a proportional bar (0..1)."""
    if value is None:
        return '<span class="muted">–</span>'
    width = max(0.0, min(1.0, float(value))) * 120
    return f'<span class="bar" style="width:{width:.1f}px"></span> {fmt_number(float(value))}'
