"""MEGC2019 composite: ``combined_3class_gt.csv`` (SMIC-HS + CASME II + SAMM, 442 samples, 68 subjects).

No header; columns dataset, subject, filename, label (0 negative, 1 positive, 2 surprise). Subjects are
written per source dataset (``sub01``, ``s01``, and ``6`` for SAMM's ``006``), so the composite's subject
is ``<dataset>/<subject>`` (68 LOSO folds). Frames: ``<dataset>/<subject>/<filename>`` under a root that
holds the three datasets (SAMM's subject zero-padded to its folder name); the sheet gives no frame
range, so a sample uses its whole folder (``extras["frame_range"] == "folder"``).
"""

from __future__ import annotations

from pathlib import Path

from mer.protocols.datasets import ParseResult
from mer.protocols.sample import Sample
from mer.protocols.sheets.common import Collector, int_cell, read_grid, text

LABELS = ("negative", "positive", "surprise")
SOURCES = ("smic", "casme2", "samm")


def parse_megc2019(path: Path, dataset: str = "megc2019") -> ParseResult:
    """Read ``combined_3class_gt.csv``.

    Raises:
        AnnotationError: unreadable file.
    """
    grid = next(iter(read_grid(path).values()))
    out = Collector(dataset)
    for i in range(len(grid)):
        cells = [text(v) for v in grid.iloc[i]]
        row = i + 1
        if not any(cells):
            continue
        if len(cells) < 4 or not all(cells[:4]):
            out.issue(row, "", "row", "expected dataset, subject, filename, label", fatal=True)
            continue
        source, subject, filename, label_text = (c.strip() for c in cells[:4])
        source = source.lower()
        sid = f"{source}/{subject}/{filename}"
        label = int_cell(label_text)
        if label is None or not 0 <= label < len(LABELS):
            out.issue(row, sid, "label", f"label {label_text!r} is not 0, 1 or 2", fatal=True)
            continue
        if source not in SOURCES:
            out.issue(row, sid, "dataset", f"unknown source dataset {source!r}")
        folder_subject = subject.zfill(3) if source == "samm" and subject.isdigit() else subject
        out.add(
            Sample(
                dataset=dataset,
                subject=f"{source}/{subject}",
                sample_id=sid,
                source=f"{source}/{folder_subject}/{filename}",
                onset=0,
                apex=None,
                offset=0,
                emotion=LABELS[label],
                row=row,
                extras={"source_dataset": source, "frame_range": "folder"},
            )
        )
    return out.result()
