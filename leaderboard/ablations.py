"""Ablation tables (MER-CLIP Tables VIII–XI): each paper row is a registered mer variant.

A table is shown once one of its variants (any model in it other than the full ``merclip``) has a run.
Every paper row gets a reported line and a measured line; a measured cell uses the latest complete run of
that variant on that protocol and is blank when there is none. Protocols other than the paper's three
(e.g. ``loso-synth-3``) get extra columns when the table's variants ran there.

Mapping (paper row → variant), as in ``reported/ablations.csv``:

- VIII: UniformerV2 + linear head → ``uniformerv2``; then, cumulatively, ``merclip-no-align`` (✗✓-✗),
  ``merclip-no-eim`` (✓✗✗✗), ``merclip-no-progressive`` (✓✓✗✗), ``merclip-no-aug`` (✓✓✓✗), ``merclip``;
  Emo-Guided → ``emo-clip``.
- IX: UniformerV2 Base / +LSFM / +AugMix / +both → ``uniformerv2``, ``uniformerv2-lsfm``,
  ``uniformerv2-augmix``, ``uniformerv2-lsfm-augmix``; MER-CLIP → ``merclip-no-aug``, ``merclip-lsfm``,
  ``merclip-augmix``, ``merclip``.
- X: ``merclip``, ``merclip-facs-prompts``, ``merclip-shuffled-aus``.
- XI: ``merclip-templates-{1,3,5,10}``; 7 templates is ``merclip``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mer.leaderboard.cells import NOT_SHOWN, Cell, Column, Metric, Table, metric
from mer.leaderboard.collect import RunRecord
from mer.leaderboard.reported import AblationRow
from mer.leaderboard.tables import protocol_order

PAPER_PROTOCOLS = {"dfme-test-a": "TestA", "dfme-test-b": "TestB", "loso-samm-3": "SAMM"}
FULL_MODEL = "merclip"


@dataclass(frozen=True)
class AblationSpec:
    """Layout of one ablation table: its setting columns and a note."""

    table: str
    title: str
    labels: tuple[str, ...]
    note: str = ""


VIII_NOTE = (
    "AUG = AU-guided cross-modal alignment, EI = emotion-inference head, PT = progressive training, "
    "DA = data augmentation (LSFM + AugMix). Row 1 is UniformerV2 with a linear head."
)
X_NOTE = "F = fixed AU order, S = shuffled; Action-Oriented = phrases, FACS-Based = FACS names."
ABLATIONS = (
    AblationSpec("VIII", "Table VIII: component ablation", ("AUG", "EI", "PT", "DA"), VIII_NOTE),
    AblationSpec("IX", "Table IX: data augmentation (LSFM = LocalStaticFaceMix)", ("Model", "Aug")),
    AblationSpec("X", "Table X: AU description design", ("Order", "Prompt type"), X_NOTE),
    AblationSpec(
        "XI", "Table XI: number of templates", ("#",), "Templates 1..n of Table XII; the default is 7."
    ),
)


def _latest(runs: list[RunRecord]) -> RunRecord | None:
    return max(runs, key=lambda r: r.recency_key) if runs else None


def ablation_table(spec: AblationSpec, rows: list[AblationRow], runs: list[RunRecord]) -> Table | None:
    """One ablation table, or None when none of its variants has a run.

    Args:
        spec: The table's layout.
        rows: Its reported rows (all protocols), in file order.
        runs: Every emotion run (any model, any protocol).
    """
    models = list(dict.fromkeys(r.model for r in rows))
    mine = [r for r in runs if r.model in models]
    if not any(r.model != FULL_MODEL for r in mine):
        return None
    extra = sorted({r.protocol for r in mine} - set(PAPER_PROTOCOLS), key=protocol_order)
    protocols = {**PAPER_PROTOCOLS, **{p: p for p in extra}}

    columns = [Column(f"label{i}", h) for i, h in enumerate(spec.labels)]
    columns += [Column("variant", "Variant"), Column("kind", "Kind")]
    for p, short in protocols.items():
        columns += [Column(f"{p}:uf1", f"{short} UF1"), Column(f"{p}:uar", f"{short} UAR")]
    columns.append(Column("runs", "Runs"))

    paper_rows: dict[int, list[AblationRow]] = {}
    for r in rows:
        paper_rows.setdefault(r.row, []).append(r)
    out: list[dict[str, Cell]] = []
    oracle = False
    for group in paper_rows.values():
        first = group[0]
        rep: dict[str, Cell] = {f"label{i}": v for i, v in enumerate(first.labels)}
        rep.update(variant=first.model, kind=first.status)
        meas: dict[str, Cell] = {"variant": first.model, "kind": "measured"}
        for p in protocols:
            paper = next((r for r in group if r.protocol == p), None)
            rep[f"{p}:uf1"] = Metric(paper.uf1) if paper else NOT_SHOWN
            rep[f"{p}:uar"] = Metric(paper.uar) if paper else NOT_SHOWN
        used = []
        for p in protocols:
            run = _latest([r for r in mine if r.model == first.model and r.protocol == p])
            if run is None:
                continue
            used.append(run.run_id if run.complete else f"{run.run_id} ({run.folds_text})")
            if run.complete and run.metrics:
                per_fold = run.metrics.get("per_fold") or {}
                for m in ("uf1", "uar"):
                    meas[f"{p}:{m}"] = metric(run.metrics.get(m), (per_fold.get(m) or {}).get("std"))
            oracle = oracle or run.oracle
            if run.oracle:
                meas["kind"] = "measured †"
        meas["runs"] = ", ".join(used) if used else "not run"
        out += [rep, meas]
    notes = [spec.note] if spec.note else []
    notes.append("Measured: the latest complete run of each variant on each protocol.")
    if oracle:
        notes.append("† selected on the test fold (`--select oracle`): optimistic.")
    key = f"table-{spec.table.lower()}"
    return Table(key, spec.title, columns, out, notes)


def ablation_tables(rows: list[AblationRow], runs: list[RunRecord]) -> list[Table]:
    """Tables VIII–XI that have runs, in paper order."""
    tables = []
    for spec in ABLATIONS:
        t = ablation_table(spec, [r for r in rows if r.table == spec.table], runs)
        if t is not None:
            tables.append(t)
    return tables
