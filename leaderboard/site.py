"""``mer leaderboard build --format html``: the leaderboard as a static web site.

The folder holds ``index.html`` (one sortable, filterable table per protocol, the papers' rows beside
measured runs), ``runs/<run>.html`` (per-fold UF1 strip plot, confusion matrix, per-class F1, the run's
whole record, its ``predictions.csv``), ``compare.html`` (two runs fold by fold with a Wilcoxon
signed-rank test) and the ``site.css`` / ``site.js`` they load. Nothing is fetched at view time: it opens
from disk, and any static host (a Hugging Face static Space) serves it as is.

The pages are built in memory as ``{relative path: bytes}``; the same runs give the same bytes, so
``--check`` compares that with the folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path

from mer.errors import UsageError
from mer.leaderboard.cells import Metric, Table, fmt_number
from mer.leaderboard.collect import RunRecord
from mer.leaderboard.folds import FOLD_METRICS, FoldScore, fold_scores, paired_test, predictions_file
from mer.leaderboard.html import (
    bar,
    cell_html,
    confusion_html,
    esc,
    page,
    record_html,
    simple_table,
    strip_plot,
)
from mer.leaderboard.render import INTRO, TITLE
from mer.leaderboard.tables import METRIC_HEADERS, ORACLE, PROTOCOLS, method_label

ASSETS = ("site.css", "site.js")
GENERATOR = '<meta name="generator" content="mer leaderboard">'
#: Columns of the markdown tables that point at PNGs; the site shows the run's page instead.
DROPPED_COLUMNS = ("figure",)
OTHER_PAPERS = "papers' other methods"
SELECT_LABELS = {
    "last": "last epoch (honest)",
    "oracle": "oracle † (test-fold selection)",
    "reported": "papers' rows",
}


class SiteFolderError(UsageError, ValueError):
    """``--out`` names a folder that holds something other than a mer site."""


@dataclass
class Site:
    """A built site: ``files`` maps POSIX paths relative to the site folder to their bytes."""

    files: dict[str, bytes] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)  # run id → its page, relative to the site


def md_inline(text: str) -> str:
    """The markdown the tables' titles and notes use (`` `code` ``, ``**bold**``) as HTML."""
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def run_pages(runs: Sequence[RunRecord]) -> dict[str, str]:
    """Run id → ``runs/<slug>.html``, the slug made unique when two ids map to the same file name."""
    pages: dict[str, str] = {}
    used: set[str] = set()
    for run in sorted(runs, key=lambda r: r.run_id):
        slug, n = _slug(run.run_id), 1
        while slug.lower() in used:
            n += 1
            slug = f"{_slug(run.run_id)}-{n}"
        used.add(slug.lower())
        pages[run.run_id] = f"runs/{slug}.html"
    return pages


# --------------------------------------------------------------------------------------------- index


def _row_tags(t: Table, runs: dict[str, RunRecord], reported_families: list[str]) -> list[dict[str, str]]:
    """``data-family`` / ``data-select`` of each row of a protocol or per-class table."""
    tags = []
    rep = iter(reported_families)
    for row in t.rows:
        run = runs.get(str(row.get("run") or ""))
        if run is not None:
            tags.append(
                {"family": run.model, "select": run.select, "kind": "oracle" if run.oracle else "measured"}
            )
        elif "run" in row:  # a model mer can run but has not
            model = str(row.get("method") or "").removesuffix(" (reconstruction)")
            tags.append({"family": model, "select": "", "kind": "measured"})
        else:
            tags.append({"family": next(rep, OTHER_PAPERS), "select": "reported", "kind": "reported"})
    return tags


def _table_html(t: Table, tid: str, runs: dict[str, RunRecord], pages: dict[str, str], tags) -> str:
    columns = [c for c in t.columns if c.key not in DROPPED_COLUMNS]
    numeric = {
        c.key
        for c in columns
        if c.key.rpartition(":")[2] in METRIC_HEADERS or c.key.startswith(("f1:", "recall:"))
    }
    numeric |= {k for row in t.rows for k, v in row.items() if isinstance(v, Metric)}
    out = [f'<div class="scroll"><table class="sortable" id="{tid}"><thead><tr>']
    out += [
        f'<th data-type="{"num" if c.key in numeric else "text"}" title="sort by {esc(c.header)}">'
        f"{esc(c.header)}</th>"
        for c in columns
    ]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(t.rows):
        tag = tags[i] if tags else None
        attrs = f' data-i="{i}"'
        if tag is not None:
            family, select = esc(tag["family"]), esc(tag["select"])
            attrs += f' class="{tag["kind"]}" data-family="{family}" data-select="{select}"'
        cells = []
        for c in columns:
            value = row.get(c.key)
            href = None
            if c.key == "run" and str(value) in pages:
                href = pages[str(value)]
            td, inner = cell_html(value, href)
            cells.append(f"<td{td}>{inner}</td>")
        out.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _options(select_id: str, label: str, values: list[tuple[str, str]]) -> str:
    opts = ['<option value="">all</option>'] + [
        f'<option value="{esc(v)}">{esc(text)}</option>' for v, text in values
    ]
    return f'<label for="{select_id}">{esc(label)}</label><select id="{select_id}">{"".join(opts)}</select>'


def index_page(
    tables: list[Table], runs: list[RunRecord], pages: dict[str, str], families: dict[str, list[str]]
) -> str:
    """``index.html``: the reading guide, the filters and every table.

    Args:
        tables: The tables of :func:`~mer.leaderboard.build.assemble_tables`.
        runs: The runs shown.
        pages: Run id → its page.
        families: Protocol → the model family of each of its reported rows, in table order (the tables
            whose key is in here, and their per-class / per-AU tables, are the filterable boards).
    """
    by_id = {r.run_id: r for r in runs}
    sections, protocols, fams, selects = [], [], set(), set()
    for n, t in enumerate(tables):
        protocol = t.key.split("/")[0] if t.key.split("/")[0] in families else ""
        tags = _row_tags(t, by_id, families.get(t.key, [])) if protocol else []
        if protocol and protocol not in protocols:
            protocols.append(protocol)
        fams |= {tag["family"] for tag in tags}
        selects |= {tag["select"] for tag in tags if tag["select"]}
        level = min(max(t.level, 2), 3)
        body = [f'<section class="board" data-protocol="{esc(protocol)}" id="{esc(_slug(t.key))}">']
        body.append(
            f"<h{level}>{md_inline(t.title)} "
            f'<button class="reset" data-table="t{n}" type="button">paper order</button></h{level}>'
        )
        body.append(_table_html(t, f"t{n}", by_id, pages, tags))
        if t.notes:
            body.append('<ul class="notes">' + "".join(f"<li>{md_inline(x)}</li>" for x in t.notes) + "</ul>")
        body.append("</section>")
        sections.append("\n".join(body))
    titles = {p: (PROTOCOLS[p].title if p in PROTOCOLS else p) for p in protocols}
    filters = [
        '<div class="filters">',
        _options("f-protocol", "Protocol", [(p, f"{p}: {titles[p]}") for p in protocols]),
        _options("f-family", "Model family", [(f, f) for f in sorted(fams)]),
        _options("f-select", "Selection", [(s, SELECT_LABELS.get(s, s)) for s in sorted(selects)]),
        '<span id="f-count" class="muted"></span>',
        "</div>",
    ]
    guide = (
        ['<ul class="guide">']
        + [f"<li>{md_inline(line)}</li>" for line in INTRO]
        + [
            "<li>Click a column header to sort by it (again to reverse); a run's id opens its page; "
            '<a href="compare.html">compare two runs</a> fold by fold.</li>',
            "</ul>",
        ]
    )
    return page(TITLE, [f"<h1>{esc(TITLE)}</h1>", *guide, *filters, *sections])


# ---------------------------------------------------------------------------------------------- runs


def _headline(run: RunRecord) -> str:
    m = run.metrics or {}
    keys = [k for k in ("uf1", "uar", "acc", "wf1", "mean_f1") if isinstance(m.get(k), (int, float))]
    if not run.complete:
        return (
            f'<p class="warn">Partial run: {esc(run.folds_text)} folds done. The leaderboard shows no metric '
            "for it (no partial means); what the folds done give is in the record below.</p>"
        )
    per_fold = m.get("per_fold") or {}
    rows = []
    for k in keys:
        pf = per_fold.get(k) if isinstance(per_fold.get(k), dict) else {}
        spread = (
            f"{fmt_number(pf['mean'])} ± {fmt_number(pf['std'])}" if "mean" in pf and "std" in pf else "–"
        )
        rows.append([esc(METRIC_HEADERS.get(k, k)), bar(m[k]), spread])
    return simple_table(["metric", "all folds' predictions", "per fold (mean ± std)"], rows, "metrics")


def _folds_section(scores: list[FoldScore]) -> list[str]:
    if not scores:
        return ['<p class="muted">No per-fold scores (no predictions.csv, or not an emotion run).</p>']
    out = [strip_plot([(f.name or f"fold {f.fold}", f.scores["uf1"]) for f in scores], "UF1")]
    rows = [
        [str(f.fold), esc(f.name), str(f.n), *(fmt_number(f.scores[k]) for k in FOLD_METRICS)] for f in scores
    ]
    out.append(simple_table(["fold", "held out", "test clips", "UF1", "UAR", "ACC"], rows, "folds"))
    return out


def run_page(
    run: RunRecord, scores: list[FoldScore], others: list[RunRecord], predictions: str | None
) -> str:
    """``runs/<run>.html``: what a run measured and everything it recorded.

    Args:
        run: The run.
        scores: Its per-fold scores.
        others: Runs of the same protocol it can be compared with.
        predictions: Link to its copied ``predictions.csv`` relative to the page (None: it has none).
    """
    m = run.metrics or {}
    title = f"{run.run_id}: {method_label(run)} on {run.protocol}"
    body = [f"<h1>{esc(title)}</h1>"]
    facts = [
        f"model <code>{esc(run.model)}</code>",
        f"protocol <code>{esc(run.protocol)}</code>",
        f"status {esc(run.run.get('status', '?'))}",
        f"folds {esc(run.folds_text)}",
        f"selection {esc(ORACLE if run.oracle else run.select)}",
    ]
    body.append("<p>" + " · ".join(facts) + "</p>")
    if run.oracle:
        body.append(
            '<p class="warn">† Selected on the test fold (<code>--select oracle</code>): optimistic, '
            "not comparable with honest runs.</p>"
        )
    if run.reconstruction:
        body.append(
            '<p class="warn">Reconstruction: the method is rebuilt from its paper\'s description.</p>'
        )
    body += ["<h2>Metrics</h2>", _headline(run), "<h2>Per-fold UF1</h2>", *_folds_section(scores)]
    if run.complete and m.get("confusion"):
        classes = list(m.get("classes") or run.run.get("classes") or [])
        body += [
            '<h2>Confusion matrix</h2><div class="scroll">',
            confusion_html(m["confusion"], classes),
            "</div>",
        ]
        per_class = m.get("per_class") or {}
        rows = [
            [
                esc(c),
                bar((v or {}).get("f1")),
                bar((v or {}).get("recall")),
                esc((v or {}).get("support", "")),
            ]
            for c, v in per_class.items()
        ]
        body += [
            "<h2>Per-class F1</h2>",
            simple_table(["class", "F1", "recall", "support"], rows, "per-class"),
        ]
    if run.complete and m.get("per_au"):
        rows = [[esc(a), bar((v or {}).get("f1"))] for a, v in m["per_au"].items()]
        body += ["<h2>Per-AU F1</h2>", simple_table(["AU", "F1"], rows, "per-au")]
    if predictions:
        body.append(
            f'<h2>Predictions</h2><p><a href="{esc(predictions)}">predictions.csv</a> '
            "(one row per test clip: fold, true and predicted class, class probabilities).</p>"
        )
    if others:
        links = [
            f'<li><a href="../compare.html#{esc(run.protocol)}|{esc(run.run_id)}|{esc(o.run_id)}">'
            f"{esc(o.run_id)}</a> ({esc(method_label(o))})</li>"
            for o in others
        ]
        body += ["<h2>Compare with</h2>", "<ul>", *links, "</ul>"]
    body += ["<h2>Run record (<code>run.json</code>)</h2>", record_html(run.run)]
    if m:
        body += ["<h2>Metrics record (<code>metrics.json</code>)</h2>", record_html(m)]
    return page(title, body, root="../")


# ------------------------------------------------------------------------------------------- compare


def _pair_html(a: RunRecord, b: RunRecord, sa: list[FoldScore], sb: list[FoldScore], pages) -> str:
    tests = {k: paired_test(sa, sb, k) for k in FOLD_METRICS}
    fa, fb = {f.fold: f for f in sa}, {f.fold: f for f in sb}
    common = tests["uf1"].folds
    head = (
        f'<div class="pair" data-a="{esc(a.run_id)}" data-b="{esc(b.run_id)}" hidden>'
        f'<p>A = <a href="{esc(pages[a.run_id])}">{esc(a.run_id)}</a> ({esc(method_label(a))}, '
        f'{esc(ORACLE if a.oracle else a.select)}); B = <a href="{esc(pages[b.run_id])}">{esc(b.run_id)}</a> '
        f"({esc(method_label(b))}, {esc(ORACLE if b.oracle else b.select)}). Compared on {len(common)} "
        f"fold{'s' if len(common) != 1 else ''} both scored.</p>"
    )
    out = [head]
    if a.oracle != b.oracle:
        out.append('<p class="warn">One of the two runs is † oracle-selected: the comparison favours it.</p>')
    rows = []
    for f in common:
        row = [str(f), esc(fa[f].name or fb[f].name)]
        for k in ("uf1", "uar"):
            d = fa[f].scores[k] - fb[f].scores[k]
            row += [fmt_number(fa[f].scores[k]), fmt_number(fb[f].scores[k]), f"{d:+.4f}"]
        rows.append(row)
    headers = ["fold", "held out", "A UF1", "B UF1", "A − B UF1", "A UAR", "B UAR", "A − B UAR"]
    out.append(simple_table(headers, rows, "diffs"))
    lines = []
    for k, t in tests.items():
        mean = sum(t.diffs) / len(t.diffs) if t.diffs else 0.0
        stat = "" if t.p_value is None else f"W = {t.statistic:g}, p = {t.p_value:.4f}; "
        lines.append(
            f"<li><strong>{METRIC_HEADERS[k]}</strong>: mean A − B = {mean:+.4f}; {stat}{esc(t.verdict)}</li>"
        )
    out += [
        "<p>Wilcoxon signed-rank test over folds (<code>scipy.stats.wilcoxon</code>):</p>",
        "<ul>",
        *lines,
        "</ul>",
    ]
    out.append("</div>")
    return "\n".join(out)


def compare_page(runs: list[RunRecord], scores: dict[str, list[FoldScore]], pages: dict[str, str]) -> str:
    """``compare.html``: per protocol, two pickers and every ordered pair of its scored runs."""
    body = [
        "<h1>Compare two runs</h1>",
        '<p class="guide">Pick two runs of one protocol: their per-fold UF1 / UAR side by side and a '
        "paired test across folds. Folds where the runs tie carry no sign and are dropped; with fewer "
        "than six differing folds no p-value is given, since none could reach 0.05.</p>",
    ]
    by_protocol: dict[str, list[RunRecord]] = {}
    for r in runs:
        if scores.get(r.run_id):
            by_protocol.setdefault(r.protocol, []).append(r)
    shown = 0
    for protocol in sorted(by_protocol):
        group = by_protocol[protocol]
        if len(group) < 2:
            continue
        shown += 1

        def options(selected: str, group: list[RunRecord] = group) -> str:
            return "".join(
                f'<option value="{esc(r.run_id)}"{" selected" if r.run_id == selected else ""}>'
                f"{esc(r.run_id)} ({esc(method_label(r))})</option>"
                for r in group
            )

        # B starts on the second run, so that the page opens on a real comparison
        body += [
            f'<section class="compare" data-protocol="{esc(protocol)}">',
            f"<h2><code>{esc(protocol)}</code></h2>",
            f'<p><label>A <select class="pick-a">{options(group[0].run_id)}</select></label> '
            f'<label>B <select class="pick-b">{options(group[1].run_id)}</select></label></p>',
            '<p class="pair-none muted" hidden>Pick two different runs.</p>',
        ]
        for a, b in permutations(group, 2):
            body.append(_pair_html(a, b, scores[a.run_id], scores[b.run_id], pages))
        body.append("</section>")
    if not shown:
        body.append('<p class="muted">No protocol has two runs with per-fold predictions yet.</p>')
    return page("mer leaderboard: compare two runs", body)


# --------------------------------------------------------------------------------------------- build


def _asset(name: str) -> bytes:
    return (Path(__file__).with_name(name)).read_bytes()


def build_site(tables: list[Table], runs: list[RunRecord], families: dict[str, list[str]]) -> Site:
    """Every file of the site, in memory.

    Args:
        tables: The tables of :func:`~mer.leaderboard.build.assemble_tables` (built without figures).
        runs: The runs shown.
        families: Protocol → the model family of each of its reported rows, in table order.

    Raises:
        BadInputError: a run's ``predictions.csv`` is unreadable (file and row named).
    """
    site = Site(pages=run_pages(runs))
    scores = {r.run_id: fold_scores(r) if r.complete else [] for r in runs}
    site.files["index.html"] = index_page(tables, runs, site.pages, families).encode()
    site.files["compare.html"] = compare_page(runs, scores, site.pages).encode()
    for name in ASSETS:
        site.files[name] = _asset(name)
    for run in runs:
        others = [
            o
            for o in runs
            if o.protocol == run.protocol and o is not run and scores[run.run_id] and scores[o.run_id]
        ]
        pred = predictions_file(run)
        page_path = site.pages[run.run_id]
        link = f"{Path(page_path).stem}/predictions.csv" if pred is not None else None
        site.files[page_path] = run_page(run, scores[run.run_id], others, link).encode()
        if pred is not None:
            site.files[f"runs/{link}"] = pred.read_bytes()
    site.files = dict(sorted(site.files.items()))
    return site


def stale_paths(site: Site, folder: Path) -> list[str]:
    """Paths that differ between ``site`` and ``folder``: changed, missing, or left over from older runs."""
    on_disk = (
        {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        if folder.is_dir()
        else set()
    )
    out = [p for p, data in site.files.items() if p not in on_disk or (folder / p).read_bytes() != data]
    return sorted(out + [p for p in on_disk if p not in site.files])


def is_site_folder(folder: Path) -> bool:
    """True for a missing or empty folder, or one holding a site this module wrote."""
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()):
        return True
    index = folder / "index.html"
    return index.is_file() and GENERATOR in index.read_text(encoding="utf-8", errors="replace")[:2000]


def write_site(site: Site, folder: Path) -> list[str]:
    """Bring ``folder`` to ``site``: write what changed (each file atomically), remove files the site no
    longer has. Returns the paths changed.

    Raises:
        SiteFolderError: ``folder`` holds files that are not a mer site (nothing is touched).
    """
    from mer.protocols.io import atomic_write_bytes

    if not is_site_folder(folder):
        raise SiteFolderError(
            f"{folder} is not empty and holds no mer leaderboard site (no index.html written by mer): "
            "refusing to write into it; pass another --out"
        )
    changed = stale_paths(site, folder)
    for rel in changed:
        path = folder / rel
        if rel in site.files:
            atomic_write_bytes(path, site.files[rel])
        else:
            path.unlink()
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    return changed
