"""SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` (sheet MICRO_ONLY) and its CSV export.

The header (Subject, Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration, Micro,
Action Units, Estimated Emotion, Objective Classes, Notes) sits below a block of notes (Excel row 14),
so it is searched for rather than assumed. Subjects are text with leading zeros (``006``); frames live
in ``006/006_1_2/006_05562.jpg``. Emotions are capitalised (``Anger``, ``Other``).
"""

from __future__ import annotations

from pathlib import Path

from mer.protocols.datasets import ParseResult
from mer.protocols.emotions import canonical_emotion
from mer.protocols.sample import Sample
from mer.protocols.sheets.common import Collector, columns, find_table, int_cell, subject_text, text

# The published names first; any usual spelling (``Onset``, ``Label``, ``AU``...) is accepted.
REQUIRED = columns(
    "subject", "filename", "emotion", onset=("Onset Frame",), apex=("Apex Frame",), offset=("Offset Frame",)
)
OPTIONAL = columns(
    "aus",
    "objective",
    inducement=("Inducement Code",),
    duration=("Duration",),
    micro=("Micro",),
    notes=("Notes",),
)


def parse_samm(path: Path, dataset: str = "samm") -> ParseResult:
    """Read the SAMM FACS coding sheet (.xlsx sheet MICRO_ONLY, or a CSV export with or without the notes).

    Raises:
        AnnotationError: unreadable file or no header with the SAMM columns.
    """
    table = find_table(path, REQUIRED, OPTIONAL, sheets=("MICRO_ONLY",))
    out = Collector(dataset)
    cols = (table.header("onset"), table.header("apex"), table.header("offset"))
    out.no_au_column(table)
    for row, r in table.rows():
        subject = subject_text(r["subject"], 3)
        filename = text(r["filename"])
        if not subject or not filename:
            out.issue(row, filename, table.header("subject"), "missing subject or filename", fatal=True)
            continue
        if not filename.startswith(subject + "_"):
            out.issue(
                row, filename, table.header("filename"), f"filename does not start with subject {subject}_"
            )
        frames = out.frames(row, filename, cols, r["onset"], r["apex"], r["offset"])
        if frames is None:
            continue
        emotion = canonical_emotion(text(r["emotion"]))
        if not emotion:
            out.issue(row, filename, table.header("emotion"), "no emotion")
        parsed, au_text = out.row_aus(table, row, filename, r)
        extras = dict(frames.extras())
        for key, name in (
            ("inducement", "inducement_code"),
            ("objective", "objective_class"),
            ("notes", "notes"),
        ):
            if table.has(key) and text(r[key]):
                extras[name] = text(r[key])
        if table.has("duration") and int_cell(r["duration"]) is not None:
            extras["duration"] = int_cell(r["duration"])
        out.add(
            Sample(
                dataset=dataset,
                subject=subject,
                sample_id=filename,
                source=f"{subject}/{filename}",
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
