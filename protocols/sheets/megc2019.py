"""MEGC2019 composite (SMIC-HS + CASME II + SAMM, 442 samples, 68 subjects), in the forms it circulates in.

- The official ``combined_3class_gt.csv``: no header; columns dataset, subject, filename, label
  (0 negative, 1 positive, 2 surprise). Extra columns after these four are ignored.
- Sheets with a header row (e.g. ``Dataset, Subject, Filename, Onset, Apex, Offset, AU, Estimated
  Emotion``): columns found by name (any usual spelling, any case, any order, extra columns ignored).
  When the sheet gives onset / apex / offset, they are the sample's frames; otherwise (columns absent,
  or all three cells of a row blank) a sample uses its whole folder (``extras["frame_range"] == "folder"``).

Labels may be the numbers 0 / 1 / 2 or words in any case: ``negative`` / ``positive`` / ``surprise``, or a
source emotion that the MEGC2019 3-class map folds into one of them (``happiness`` → positive, ``disgust``
→ negative; the word as written is kept in ``extras["sheet_label"]``). Subjects are written per source
dataset (``sub01``, ``s01``, and ``6`` for SAMM's ``006``), so the composite's subject is
``<dataset>/<subject>`` (68 LOSO folds). Frames: ``<dataset>/<subject>/<filename>`` under a root that
holds the three datasets (SAMM's subject zero-padded to its folder name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mer.protocols.datasets import ParseResult
from mer.protocols.emotions import canonical_emotion, three_class
from mer.protocols.sample import Sample
from mer.protocols.sheets.common import (
    Collector,
    Table,
    columns,
    describe_needs,
    find_table,
    int_cell,
    is_blank,
    match_header,
    read_grid,
    text,
)

LABELS = ("negative", "positive", "surprise")
SOURCES = ("smic", "casme2", "samm")
# The headerless form, by position.
POSITIONAL = ("dataset", "subject", "filename", "label")
REQUIRED = columns("dataset", "subject", "filename", emotion=("Label", "Estimated Emotion", "Emotion"))
OPTIONAL = columns("onset", "apex", "offset", "aus")
# How many leading rows may be looked at for a header (notes above it are rare but seen).
HEADER_ROWS = 5


def label_of(cell: str) -> tuple[str | None, bool]:
    """``(3-class label, folded)`` of a label cell; ``folded`` when a source emotion was mapped."""
    number = int_cell(cell)
    if number is not None:
        return (LABELS[number], False) if 0 <= number < len(LABELS) else (None, False)
    word = canonical_emotion(cell)
    if word in LABELS:
        return word, False
    mapped = three_class(word)
    return mapped, mapped is not None


def _header_row(grid: Any) -> int | None:
    """The grid row that reads as a header (two or more known column names), or None (headerless)."""
    wanted = {**REQUIRED, **OPTIONAL}
    for i in range(min(HEADER_ROWS, len(grid))):
        if len(match_header(grid, i, wanted)) >= 2:
            return i
    return None


def parse_megc2019(path: Path, dataset: str = "megc2019") -> ParseResult:
    """Read a MEGC2019 composite sheet, with or without a header row.

    Raises:
        AnnotationError: unreadable file; a header row that lacks a required column (the message names
            the columns found and the ones needed); or no usable sample at all.
    """
    grid = next(iter(read_grid(path).values()))
    out = Collector(dataset)
    header = _header_row(grid)
    if header is None:
        rows = _positional_rows(grid)
        described = "no header row; read by position as " + ", ".join(POSITIONAL)
        has_frames = False
        table = None
    else:
        table = find_table(path, REQUIRED, OPTIONAL)
        rows = table.rows()
        described = table.header_text()
        has_frames = all(table.has(f) for f in ("onset", "apex", "offset"))
        partial = [f for f in ("onset", "apex", "offset") if table.has(f)]
        if partial and not has_frames:
            missing = [f for f in ("onset", "apex", "offset") if not table.has(f)]
            out.issue(
                None,
                "",
                "frames",
                f"frame columns incomplete (missing {describe_needs(OPTIONAL, missing)}): "
                "every sample uses its whole folder",
            )
    for row, r in rows:
        _add_row(out, table, row, r, dataset, has_frames)
    return out.result(path, described)


def _positional_rows(grid: Any):
    for i in range(len(grid)):
        cells = [text(v) for v in grid.iloc[i]]
        if not any(cells):
            continue
        yield i + 1, dict(zip(("dataset", "subject", "filename", "emotion"), cells + [""] * 4, strict=False))


def _add_row(
    out: Collector, table: Table | None, row: int, r: dict[str, Any], dataset: str, has_frames: bool
) -> None:
    def col(field: str) -> str:
        if table is not None:
            return table.header(field)
        return "label" if field == "emotion" else field

    source, subject, filename = (text(r[f]) for f in ("dataset", "subject", "filename"))
    label_text = text(r["emotion"])
    if not (source and subject and filename and label_text):
        out.issue(row, "", "row", "expected dataset, subject, filename and label", fatal=True)
        return
    source = source.lower()
    sid = f"{source}/{subject}/{filename}"
    label, folded = label_of(label_text)
    if label is None:
        out.issue(
            row,
            sid,
            col("emotion"),
            f"label {label_text!r} is not 0, 1, 2 or negative / positive / surprise",
            fatal=True,
        )
        return
    if source not in SOURCES:
        out.issue(row, sid, col("dataset"), f"unknown source dataset {source!r}")
    extras: dict[str, Any] = {"source_dataset": source}
    if folded:
        extras["sheet_label"] = label_text
    onset, apex, offset = 0, None, 0
    # A row whose three frame cells are all blank (the SMIC part of some sheets) uses its whole folder.
    if has_frames and not all(is_blank(r[f]) for f in ("onset", "apex", "offset")):
        cols = (col("onset"), col("apex"), col("offset"))
        frames = out.frames(row, sid, cols, r["onset"], r["apex"], r["offset"])
        if frames is None:
            return
        onset, apex, offset = frames.onset, frames.apex, frames.offset
        extras.update(frames.extras())
    else:
        extras["frame_range"] = "folder"
    aus, au_text = (), ""
    if table is not None and table.has("aus"):
        parsed, au_text = out.row_aus(table, row, sid, r)
        aus = parsed.aus
    folder_subject = subject.zfill(3) if source == "samm" and subject.isdigit() else subject
    out.add(
        Sample(
            dataset=dataset,
            subject=f"{source}/{subject}",
            sample_id=sid,
            source=f"{source}/{folder_subject}/{filename}",
            onset=onset,
            apex=apex,
            offset=offset,
            emotion=label,
            aus=aus,
            au_text=au_text,
            row=row,
            extras=extras,
        )
    )
