"""Per-protocol tables: the papers' reported rows with mer's measured runs beside them.

Row order is fixed so that the same runs always give the same table: the paper's rows in the paper's
order; right after the first reported row of a method mer can run (``model`` column of ``main.csv``), that
model's runs (or an empty measured row when it has none); then every other model's runs by name, with the
``chance`` and ``majority`` references last. Runs of one model are ordered by size, recipe, selection rule,
seed and run id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mer.leaderboard.cells import NOT_SHOWN, Cell, Column, Link, Metric, Table, metric
from mer.leaderboard.collect import RunRecord
from mer.leaderboard.reported import NA, ReportedRow

EMOTION_METRICS = ("uf1", "uar", "acc")
METRIC_HEADERS = {"uf1": "UF1", "uar": "UAR", "acc": "ACC", "wf1": "WF1", "mean_f1": "Mean F1"}
REFERENCE_MODELS = ("chance", "majority")
#: Models rebuilt from an abstract; their rows say so even before they have runs.
RECONSTRUCTIONS = ("microau-clip",)
ORACLE = "oracle †"
#: The aggregator gives "F1" without saying which average; it is kept as stated.
OTHER_METRIC_HEADERS = {"uf1": "F1", "wf1": "weighted F1"}


@dataclass(frozen=True)
class ProtocolInfo:
    """How a protocol's table looks.

    Attributes:
        title: Human name.
        metrics: The paper's metric columns in the paper's order (the rest follow for measured rows).
        source: Where the reported rows come from ("MER-CLIP Table IV").
        task: "emotion" or "au".
        parts: Source datasets of a composite set, each shown with ``metrics`` after the composite
            figure (MEGC2019: CASME II, SAMM, SMIC); column keys ``casme2:uf1``.
    """

    title: str
    metrics: tuple[str, ...] = EMOTION_METRICS
    source: str = ""
    task: str = "emotion"
    parts: tuple[str, ...] = ()


#: Display names of the parts of a composite set.
PART_TITLES = {"casme2": "CASME II", "samm": "SAMM", "smic": "SMIC"}
#: Footnote markers of the flow a measured row was computed with.
MARKERS = "¹²³⁴⁵⁶⁷⁸⁹"


PROTOCOLS: dict[str, ProtocolInfo] = {
    "loso-synth-3": ProtocolInfo("SynthME 3-class (LOSO, the embedded synthetic benchmark)"),
    "loso-casme2-3": ProtocolInfo("CASME II 3-class (LOSO)", ("uf1", "uar"), "MER-CLIP Table IV"),
    "loso-samm-3": ProtocolInfo("SAMM 3-class (LOSO)", ("uf1", "uar"), "MER-CLIP Table IV"),
    "loso-casme2-5": ProtocolInfo("CASME II 5-class (LOSO)", ("acc", "uf1"), "MER-CLIP Table V"),
    "loso-samm-5": ProtocolInfo("SAMM 5-class (LOSO)", ("acc", "uf1"), "MER-CLIP Table V"),
    "loso-casme3-3": ProtocolInfo("CAS(ME)³ Part A 3-class (LOSO)", ("uf1", "uar"), "MER-CLIP Table VI"),
    "loso-casme3-4": ProtocolInfo("CAS(ME)³ Part A 4-class (LOSO)", ("uf1", "uar"), "MER-CLIP Table VI"),
    "loso-casme3-7": ProtocolInfo("CAS(ME)³ Part A 7-class (LOSO)", ("uf1", "uar"), "MER-CLIP Table VI"),
    "dfme-test-a": ProtocolInfo("DFME 7-class, Test A", ("uf1", "uar", "acc"), "MER-CLIP Table VII"),
    "dfme-test-b": ProtocolInfo("DFME 7-class, Test B", ("uf1", "uar", "acc"), "MER-CLIP Table VII"),
    "megc2019": ProtocolInfo(
        "MEGC2019 composite 3-class (LOSO)",
        ("uf1", "uar"),
        "per-dataset parts as MEGC2019 reports them",
        parts=("casme2", "samm", "smic"),
    ),
    "au-loso-synth": ProtocolInfo("SynthME micro-AU detection (LOSO)", ("mean_f1",), task="au"),
    "au-loso-casme2": ProtocolInfo(
        "CASME II micro-AU detection (LOSO)", ("mean_f1",), "Micro-AU CLIP, reported summary", "au"
    ),
    "au-loso-samm": ProtocolInfo(
        "SAMM micro-AU detection (LOSO)", ("mean_f1",), "Micro-AU CLIP, reported summary", "au"
    ),
}

META_COLUMNS = [
    Column("folds", "Folds"),
    Column("size", "Size"),
    Column("recipe", "Recipe"),
    Column("select", "Select"),
    Column("date", "Date"),
    Column("commit", "Commit"),
    Column("run", "Run"),
    Column("figure", "Figure"),
    Column("ref", "Ref"),
]


def protocol_order(name: str) -> tuple[int, str]:
    """Known protocols in :data:`PROTOCOLS` order, then the others alphabetically."""
    keys = list(PROTOCOLS)
    return (keys.index(name), "") if name in keys else (len(keys), name)


def info_for(protocol: str, task: str = "emotion") -> ProtocolInfo:
    """The :class:`ProtocolInfo` of ``protocol``; an unknown one gets a generic look."""
    if protocol in PROTOCOLS:
        return PROTOCOLS[protocol]
    return ProtocolInfo(protocol, ("mean_f1",) if task == "au" else EMOTION_METRICS, task=task)


def shown_metrics(info: ProtocolInfo) -> tuple[str, ...]:
    """The paper's metrics first, then the other emotion metrics mer always measures."""
    if info.task == "au":
        return info.metrics
    return info.metrics + tuple(m for m in EMOTION_METRICS if m not in info.metrics)


def part_metrics(info: ProtocolInfo) -> tuple[str, ...]:
    """The per-part columns of a composite set's table (``casme2:uf1``, ``casme2:uar``, ...)."""
    return tuple(f"{p}:{m}" for p in info.parts for m in info.metrics)


def metric_header(key: str) -> str:
    """``uf1`` → "UF1", ``casme2:uf1`` → "CASME II UF1"."""
    part, _, m = key.rpartition(":")
    return f"{PART_TITLES.get(part, part)} {METRIC_HEADERS[m]}" if part else METRIC_HEADERS[m]


def flow_note(record: Mapping[str, object]) -> str:
    """One line on the optical flow a run read (run.json ``flow``): method and parameters, or the
    flow images and how their pixels were read."""
    if record.get("method") == "flow-images":
        chans = ", ".join(str(c) for c in record.get("channels") or ())
        return (
            f"flow images from {record.get('folder')} (pattern {record.get('pattern')!r}; R, G, B = {chans}; "
            f"value = (pixel − {record.get('offset')}) / {record.get('scale')}; "
            f"resized to {record.get('side')})"
        )
    from mer.protocols.flow import FlowConfig

    return "flow: " + FlowConfig.from_json(record).describe()


def method_label(run: RunRecord) -> str:
    """Model name, marked when the method is rebuilt from an abstract."""
    return f"{run.model} (reconstruction)" if run.reconstruction else run.model


def run_meta(run: RunRecord, figures: Mapping[str, str]) -> dict[str, Cell]:
    """The bookkeeping cells of a measured row."""
    r = run.run
    fig = figures.get(run.run_id)
    return {
        "kind": "measured",
        "folds": run.folds_text,
        "size": str(r.get("size") or ""),
        "recipe": str(r.get("recipe_name") or ""),
        "select": ORACLE if run.oracle else run.select,
        "date": run.date,
        "commit": run.commit,
        "run": run.run_id,
        "figure": Link("png", fig) if fig else None,
    }


def _fold_std(run: RunRecord, key: str) -> float | None:
    per_fold = (run.metrics or {}).get("per_fold") or {}
    entry = per_fold.get(key)
    return entry.get("std") if isinstance(entry, dict) else None


def measured_row(run: RunRecord, metrics: Iterable[str], figures: Mapping[str, str]) -> dict[str, Cell]:
    """A run's row: metrics only when every fold of the protocol is done, blank otherwise."""
    row: dict[str, Cell] = {"method": method_label(run), "year": ""}
    row.update(run_meta(run, figures))
    for m in metrics:
        row[m] = _measured(run, m) if run.complete and run.metrics else None
    return row


def _measured(run: RunRecord, key: str) -> Metric | None:
    part, _, m = key.rpartition(":")
    if part:  # a composite set's part: metrics.json "per_dataset"
        return metric(((run.metrics.get("per_dataset") or {}).get(part) or {}).get(m))
    return metric(run.metrics.get(key), _fold_std(run, key))


def reported_row(rep: ReportedRow, metrics: Iterable[str]) -> dict[str, Cell]:
    """A paper's row; a metric the paper's table does not show is ``—``."""
    row: dict[str, Cell] = {"method": rep.method, "year": rep.year, "kind": rep.status, "ref": rep.citation}
    for m in metrics:
        v = rep.metrics.get(m)
        row[m] = NOT_SHOWN if v is None else (NA if v == NA else Metric(float(v)))
    return row


def _empty_measured(model: str) -> dict[str, Cell]:
    label = f"{model} (reconstruction)" if model in RECONSTRUCTIONS else model
    return {"method": label, "kind": "measured", "run": "not run"}


def table_order(run: RunRecord) -> tuple:
    """Runs of other models by name with the chance/majority references last (as in the main table)."""
    return (run.model in REFERENCE_MODELS, run.sort_key)


def protocol_table(
    protocol: str,
    reported: list[ReportedRow],
    runs: list[RunRecord],
    figures: Mapping[str, str],
    task: str = "emotion",
) -> Table:
    """The table of one protocol.

    Args:
        protocol: Protocol key.
        reported: Its reported rows in paper order.
        runs: Its runs, sorted by :attr:`RunRecord.sort_key`.
        figures: Run id → figure path relative to the output file.
        task: "emotion" or "au" (for protocols mer does not know).
    """
    info = info_for(protocol, task)
    metrics = shown_metrics(info) + part_metrics(info)
    columns = [Column("method", "Method"), Column("year", "Year"), Column("kind", "Kind")]
    columns += [Column(m, metric_header(m)) for m in metrics] + META_COLUMNS
    title = f"`{protocol}`: {info.title}" + (f" ({info.source})" if info.source else "")

    by_model: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    rows: list[dict[str, Cell]] = []
    placed: set[str] = set()
    for rep in reported:
        rows.append(reported_row(rep, metrics))
        if rep.model and rep.model not in placed:
            placed.add(rep.model)
            own = by_model.get(rep.model, [])
            rows += [measured_row(r, metrics, figures) for r in own] or [_empty_measured(rep.model)]
    rest = sorted((m for m in by_model if m not in placed), key=lambda m: (m in REFERENCE_MODELS, m))
    for model in rest:
        rows += [measured_row(r, metrics, figures) for r in by_model[model]]

    notes = [f"{rep.method}: {rep.note}" for rep in reported if rep.note]
    notes += _flow_footnotes(rows, runs)
    if any(r.oracle for r in runs):
        notes.append("† selected on the test fold (`--select oracle`): optimistic.")
    return Table(key=protocol, title=title, columns=columns, rows=rows, notes=notes)


def _flow_footnotes(rows: list[dict[str, Cell]], runs: list[RunRecord]) -> list[str]:
    """Mark each measured row of a flow model with the flow it read (one marker per distinct flow) and
    return the notes that explain the markers."""
    by_id = {r.run_id: r for r in runs}
    notes: dict[str, str] = {}  # flow note → marker
    for row in rows:
        run = by_id.get(str(row.get("run"))) if row.get("kind") == "measured" else None
        record = run.run.get("flow") if run is not None else None
        if not isinstance(record, dict):
            continue
        note = flow_note(record)
        marker = notes.setdefault(note, MARKERS[len(notes) % len(MARKERS)])
        row["method"] = f"{row['method']} {marker}"
    return [f"{marker} {note}" for note, marker in notes.items()]


def per_class_table(protocol: str, runs: list[RunRecord]) -> Table | None:
    """Per-class F1 and recall of the complete emotion runs of a protocol (None when there are none)."""
    done = sorted(
        (r for r in runs if r.complete and r.metrics and r.metrics.get("per_class")), key=table_order
    )
    if not done:
        return None
    classes: list[str] = []
    for r in done:
        for c in r.metrics.get("classes") or r.metrics["per_class"]:
            if c not in classes:
                classes.append(c)
    columns = [Column("run", "Run"), Column("method", "Method")]
    for c in classes:
        columns += [Column(f"f1:{c}", f"{c} F1"), Column(f"recall:{c}", f"{c} recall")]
    rows = []
    for r in done:
        row: dict[str, Cell] = {"run": r.run_id, "method": method_label(r)}
        for c in classes:
            pc = r.metrics["per_class"].get(c) or {}
            row[f"f1:{c}"] = metric(pc.get("f1"))
            row[f"recall:{c}"] = metric(pc.get("recall"))
        rows.append(row)
    return Table(f"{protocol}/per-class", f"`{protocol}`: per-class F1 and recall", columns, rows, level=3)


def per_au_table(protocol: str, runs: list[RunRecord]) -> Table | None:
    """Per-AU F1 of the complete AU-detection runs of a protocol (None when there are none)."""
    done = sorted((r for r in runs if r.complete and r.metrics and r.metrics.get("per_au")), key=table_order)
    if not done:
        return None
    aus: list[str] = []
    for r in done:
        aus += [a for a in r.metrics["per_au"] if a not in aus]
    columns = [Column("run", "Run"), Column("method", "Method")]
    columns += [Column(f"f1:{a}", f"{a} F1") for a in aus]
    rows = []
    for r in done:
        row: dict[str, Cell] = {"run": r.run_id, "method": method_label(r)}
        for a in aus:
            row[f"f1:{a}"] = metric((r.metrics["per_au"].get(a) or {}).get("f1"))
        rows.append(row)
    return Table(f"{protocol}/per-au", f"`{protocol}`: per-AU F1", columns, rows, level=3)


def other_reported_table(reported: list[ReportedRow]) -> Table | None:
    """Reported figures whose setting mer cannot name as a protocol (e.g. Micro-AU CLIP's MER numbers)."""
    if not reported:
        return None
    columns = [Column("method", "Method"), Column("year", "Year"), Column("kind", "Kind"),
               Column("setting", "Setting"), Column("metric", "Metric"), Column("value", "Value"),
               Column("note", "Note"), Column("ref", "Ref")]  # fmt: skip
    rows = []
    for rep in reported:
        for m, v in rep.metrics.items():
            value = NA if v == NA else Metric(float(v))
            header = OTHER_METRIC_HEADERS.get(m, METRIC_HEADERS[m])
            row = {"method": rep.method, "year": rep.year, "kind": rep.status, "setting": rep.protocol}
            rows.append({**row, "metric": header, "value": value, "note": rep.note, "ref": rep.citation})
    return Table("other-reported", "Other reported figures (settings not stated)", columns, rows)
