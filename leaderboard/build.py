"""``mer leaderboard build``: run directories → tables (with the papers' rows) → one file, plus PNGs.

Library entry point: :func:`build_leaderboard`. The CLI only parses arguments and calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mer.leaderboard.ablations import ablation_tables
from mer.leaderboard.cells import Column, Table
from mer.leaderboard.collect import RunRecord, collect_runs
from mer.leaderboard.reported import ablation_rows, citations, reported_rows
from mer.leaderboard.tables import (
    PROTOCOLS,
    info_for,
    other_reported_table,
    per_au_table,
    per_class_table,
    protocol_order,
    protocol_table,
)
from mer.protocols.io import atomic_write_text

DEFAULT_OUT = Path("leaderboard") / "LEADERBOARD.md"
#: Where ``--format html`` writes its folder when no ``--out`` is given.
DEFAULT_SITE = Path("site")
DEFAULT_RUNS = Path("runs")
FIGURES_DIR = "figures"
TASKS = ("emotion", "au")


@dataclass
class BuildResult:
    """What :func:`build_leaderboard` did.

    Attributes:
        text: The rendered document.
        out: The output file.
        fmt: Its format.
        tables: The tables rendered.
        runs: The runs shown.
        figures: PNG files written (empty with ``check``).
        skipped: One message per run directory or run that could not be shown.
        stale: With ``check``: True when ``out`` is missing or differs from ``text``; else None.
        written: Whether ``out`` was (re)written.
        changed: With format ``html``: the site's files (relative to ``out``) that were rewritten or
            removed, or, with ``check``, that differ.
        files: With format ``html``: how many files the site has; ``size`` their total bytes.
    """

    text: str
    out: Path
    fmt: str
    tables: list[Table]
    runs: list[RunRecord]
    figures: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stale: bool | None = None
    written: bool = False
    changed: list[str] = field(default_factory=list)
    files: int = 0
    size: int = 0


def figure_path(run_id: str) -> str:
    """A run's figure, relative to the output file's folder (POSIX, as written in the markdown)."""
    return f"{FIGURES_DIR}/{run_id}.png"


def data_groups(runs: list[RunRecord]) -> list[tuple[list[RunRecord], str]]:
    """Split one protocol's runs by the data they saw (their data fingerprint).

    The first group is the protocol's own table: the default data (plain name) with the most runs.
    Every other group gets a label (its data name and fingerprint id) and is shown apart, so runs on
    different data are never ranked together. Runs that predate fingerprints form their own group.
    """
    groups: dict[str, list[RunRecord]] = {}
    for r in runs:
        groups.setdefault(r.data_id, []).append(r)
    if len(groups) <= 1 and not any("@" in r.data_name for r in runs):
        return [(runs, "")]

    def rank(item: tuple[str, list[RunRecord]]) -> tuple:
        key, members = item
        return ("@" in members[0].data_name, -len(members), key)

    ordered = sorted(groups.items(), key=rank)
    out = []
    for i, (key, members) in enumerate(ordered):
        plain = i == 0 and "@" not in members[0].data_name
        name = members[0].data_name or "data not recorded (run from an older mer)"
        out.append((members, "" if plain else f"{name}, fingerprint {key or '?'}"))
    return out


def mark_data(table: Table, label: str, runs: list[RunRecord]) -> Table:
    """``table`` re-keyed and titled for runs on other data than the protocol's own table."""
    fp = (runs[0].run.get("data_fingerprint") or {}) if runs else {}
    counts = ", ".join(f"{c} {n}" for c, n in (fp.get("class_counts") or {}).items())
    what = f"{fp.get('n_samples', '?')} clips ({counts})" if fp else "data not recorded"
    note = f"Data: {what}. Runs of this protocol on other data are in separate tables: not comparable."
    suffix = (runs[0].data_id if runs else "") or "unrecorded"
    key = table.key.replace("/", f"@{suffix}/", 1) if "/" in table.key else f"{table.key}@{suffix}"
    return replace(table, key=key, title=f"{table.title} — on {label}", notes=[*table.notes, note])


def _references(tables: list[Table]) -> Table | None:
    keys: list[str] = []
    for t in tables:
        if t.key.startswith("table-") and "merclip2025" not in keys:
            keys.append("merclip2025")
        for row in t.rows:
            ref = row.get("ref")
            if isinstance(ref, str) and ref and ref not in keys:
                keys.append(ref)
    if not keys:
        return None
    refs = citations()
    rows = [{"key": k, "reference": refs.get(k, "")} for k in keys]
    return Table("references", "References", [Column("key", "Key"), Column("reference", "Reference")], rows)


def assemble_tables(
    runs: list[RunRecord], figures: dict[str, str], protocols: Sequence[str] | None = None
) -> list[Table]:
    """Every table in document order: emotion protocols (each with per-class F1/recall), AU protocols
    (each with per-AU F1), ablations with runs, other reported figures, references.

    Args:
        runs: Runs to show (already filtered to ``protocols``), sorted by sort key.
        figures: Run id → figure path relative to the output file.
        protocols: Restrict to these protocols (None: all, with every reported row).
    """
    wanted = None if protocols is None else set(protocols)
    reported = [r for r in reported_rows() if wanted is None or r.protocol in wanted]
    other = [r for r in reported if r.protocol not in PROTOCOLS]
    by_task: dict[str, set[str]] = {t: set() for t in TASKS}
    for rep in reported:
        if rep.protocol in PROTOCOLS:
            by_task[PROTOCOLS[rep.protocol].task].add(rep.protocol)
    for run in runs:
        by_task[run.task].add(run.protocol)

    tables: list[Table] = []
    for task in TASKS:
        for p in sorted(by_task[task], key=protocol_order):
            mine = [r for r in runs if r.protocol == p and r.task == task]
            rep = [r for r in reported if r.protocol == p]
            for i, (group, label) in enumerate(data_groups(mine)):
                info_task = info_for(p, task).task
                table = protocol_table(p, rep if i == 0 else [], group, figures, task=info_task)
                if label:  # runs of this protocol on other data: their own table, marked
                    table = mark_data(table, label, group)
                tables.append(table)
                detail = per_class_table(p, group) if task == "emotion" else per_au_table(p, group)
                if detail is not None:
                    tables.append(mark_data(detail, label, group) if label else detail)
    tables += ablation_tables(list(ablation_rows()), [r for r in runs if r.task == "emotion"])
    extra = other_reported_table(other)
    if extra is not None:
        tables.append(extra)
    refs = _references(tables)
    if refs is not None:
        tables.append(refs)
    return tables


def _draw(runs: list[RunRecord], folder: Path) -> list[Path]:
    from mer.leaderboard.plots import can_plot, save_run_figure

    written = []
    for run in runs:
        if not can_plot(run):
            continue
        png = folder / figure_path(run.run_id)
        metrics_json = run.path / "metrics.json"
        if png.exists() and metrics_json.exists() and png.stat().st_mtime >= metrics_json.stat().st_mtime:
            continue  # up to date: redrawing only costs time
        written.append(save_run_figure(run, png))
    return written


def build_leaderboard(
    runs_dir: str | Path = DEFAULT_RUNS,
    out: str | Path | None = None,
    fmt: str = "md",
    check: bool = False,
    protocols: Sequence[str] | None = None,
) -> BuildResult:
    """Build the leaderboard from every run under ``runs_dir``.

    Args:
        runs_dir: Folder searched recursively for run directories (a missing one means no runs).
        out: Output file (default :data:`DEFAULT_OUT`); figures go to ``figures/`` beside it and are linked
            relative to it. With ``fmt="html"`` the site's folder (default :data:`DEFAULT_SITE`).
        fmt: "md", "csv", "json", "latex" or "html" (a static web site, :mod:`mer.leaderboard.site`).
        check: Write nothing; report in ``stale`` whether ``out`` differs from what would be written.
        protocols: Only these protocols' tables (None: all).

    Returns:
        A :class:`BuildResult`.
    """
    from mer.leaderboard.plots import can_plot
    from mer.leaderboard.render import render

    out = Path(out) if out is not None else (DEFAULT_SITE if fmt == "html" else DEFAULT_OUT)
    runs, skipped = collect_runs(runs_dir)
    if protocols is not None:
        runs = [r for r in runs if r.protocol in set(protocols)]
    shown = []
    for run in runs:
        if run.task in TASKS:
            shown.append(run)
        else:
            skipped.append(f"{run.path}: task {run.task!r} has no table; run not shown")
    if fmt == "html":
        return _build_site(shown, skipped, out, check, protocols)
    figures = {r.run_id: figure_path(r.run_id) for r in shown if can_plot(r)}
    tables = assemble_tables(shown, figures, protocols)
    text = render(tables, fmt)
    result = BuildResult(text=text, out=out, fmt=fmt, tables=tables, runs=shown, skipped=skipped)
    if check:
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        result.stale = current != text
        return result
    result.figures = _draw(shown, out.parent)
    atomic_write_text(out, text)
    result.written = True
    return result


def _build_site(
    runs: list[RunRecord], skipped: list[str], out: Path, check: bool, protocols: Sequence[str] | None
) -> BuildResult:
    from mer.leaderboard.site import OTHER_PAPERS, build_site, stale_paths, write_site

    tables = assemble_tables(runs, {}, protocols)
    reported = list(reported_rows())
    boards = {r.protocol for r in runs} | {rep.protocol for rep in reported if rep.protocol in PROTOCOLS}
    families = {
        t.key: [rep.model or OTHER_PAPERS for rep in reported if rep.protocol == t.key]
        for t in tables
        if t.key in boards
    }
    site = build_site(tables, runs, families)
    result = BuildResult(
        text=site.files["index.html"].decode(), out=out, fmt="html", tables=tables, runs=runs,
        skipped=skipped, files=len(site.files), size=sum(map(len, site.files.values())),
    )  # fmt: skip
    if check:
        result.changed = stale_paths(site, out)
        result.stale = bool(result.changed)
        return result
    result.changed = write_site(site, out)
    result.written = True
    return result


def describe(result: BuildResult) -> list[str]:
    """Short lines for the CLI: what was written or whether the file is stale, and what was skipped."""
    shown = sum(1 for t in result.tables if "/" not in t.key and t.key != "references")
    if result.fmt == "html":
        what = f"{result.files} files, {result.size / 1e6:.2f} MB, {len(result.runs)} runs"
        if result.stale is not None:
            state = "is stale" if result.stale else "is up to date"
            lines = [f"site {result.out} {state} ({what})"]
            lines += [f"  differs: {p}" for p in result.changed[:20]]
            if len(result.changed) > 20:
                lines.append(f"  ... and {len(result.changed) - 20} more")
            if result.stale:
                lines.append(f"regenerate it with `mer leaderboard build --format html --out {result.out}`")
        else:
            lines = [f"wrote site {result.out} ({what}; {len(result.changed)} files changed); "
                     f"open {result.out / 'index.html'}"]  # fmt: skip
    elif result.stale is not None:
        state = "is stale: run `mer leaderboard build` to regenerate it" if result.stale else "is up to date"
        lines = [f"{result.out} {state}"]
    else:
        counts = f"{shown} tables, {len(result.runs)} runs, {len(result.figures)} figures drawn"
        lines = [f"wrote {result.out} ({counts})"]
    lines += [f"skipped {s}" for s in result.skipped]
    return lines
