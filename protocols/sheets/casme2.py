"""CASME II coding sheets: ``CASME2-coding-20140508`` and the 2019 revision ``CASME2-coding-20190701``.

Both have the columns Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated
Emotion (plus two unnamed blank columns); the 2019 revision adds Objective Classes and relabels three
sub24 rows (sadness → surprise). Subjects are text with leading zeros (``01``); frames live in
``sub01/EP02_01f/img46.jpg``. Row 04/EP12_01f writes its apex as ``/``: kept with the apex unknown.
"""

from __future__ import annotations

from pathlib import Path

from mer.protocols.datasets import ParseResult
from mer.protocols.emotions import canonical_emotion
from mer.protocols.sample import Sample
from mer.protocols.sheets.common import Collector, columns, find_table, subject_text, text

# The published names first; any usual spelling (``Onset``, ``Label``, ``AU``...) is accepted.
REQUIRED = columns(
    "subject", "filename", "emotion", onset=("OnsetFrame",), apex=("ApexFrame",), offset=("OffsetFrame",)
)
OPTIONAL = columns("aus", "objective")


def revision(path: Path, has_objective: bool) -> str:
    """ "2014" or "2019": from the file name when it says, else from the Objective Classes column."""
    name = Path(path).name
    for year in ("2014", "2019"):
        if year in name:
            return year
    return "2019" if has_objective else "2014"


def parse_casme2(path: Path, dataset: str = "casme2") -> ParseResult:
    """Read a CASME II coding sheet (.xlsx, .xls or a CSV export).

    Args:
        path: The sheet.
        dataset: Dataset name written into the samples.

    Raises:
        AnnotationError: unreadable file or no header with the CASME II columns.
    """
    table = find_table(path, REQUIRED, OPTIONAL)
    rev = revision(path, table.has("objective"))
    out = Collector(dataset)
    cols = (table.header("onset"), table.header("apex"), table.header("offset"))
    out.no_au_column(table)
    for row, r in table.rows():
        subject = subject_text(r["subject"], 2)
        filename = text(r["filename"])
        sid = f"sub{subject}/{filename}"
        if not subject or not filename:
            out.issue(row, sid, table.header("subject"), "missing subject or filename", fatal=True)
            continue
        frames = out.frames(row, sid, cols, r["onset"], r["apex"], r["offset"])
        if frames is None:
            continue
        emotion = canonical_emotion(text(r["emotion"]))
        if not emotion:
            out.issue(row, sid, table.header("emotion"), "no emotion")
        parsed, au_text = out.row_aus(table, row, sid, r)
        extras = {"revision": rev, **frames.extras()}
        if table.has("objective") and text(r["objective"]):
            extras["objective_class"] = text(r["objective"])
        out.add(
            Sample(
                dataset=dataset,
                subject=subject,
                sample_id=sid,
                source=f"sub{subject}/{filename}",
                onset=frames.onset,
                apex=frames.apex,
                offset=frames.offset,
                emotion=emotion,
                aus=parsed.aus,
                au_text=au_text,
                row=row,
                extras=extras,
            )
        )
    return out.result(path, table.header_text())
