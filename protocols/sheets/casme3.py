"""CAS(ME)³ Part A: ``cas(me)3_part_A_ME_label_JpgIndex_v1.xls`` and ``..._v2.xlsx`` (sheet ``label``).

Columns Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion; frame numbers index the
JPEG files of ``spNO.1/a/``. One clip (subject + filename) holds several samples (463 clips, 860
samples), so the sample key carries the onset: ``spNO.1/e/62``. Emotions are written ``happy``,
``sad``, ``others`` and ``Others``.
"""

from __future__ import annotations

from pathlib import Path

from mer.protocols.datasets import ParseResult
from mer.protocols.emotions import canonical_emotion
from mer.protocols.sample import Sample
from mer.protocols.sheets.common import Collector, columns, find_table, int_cell, text

# The published names first; any usual spelling (``Onset Frame``, ``Label``, ``Action Units``...) too.
REQUIRED = columns("subject", "filename", "onset", "apex", "offset", emotion=("emotion",))
OPTIONAL = columns("aus", objective=("Objective class",))


def sample_key(subject: str, filename: str, onset: int) -> str:
    """The CAS(ME)³ sample key: clip plus onset, since one clip holds several samples."""
    return f"{subject}/{filename}/{onset}"


def parse_casme3(path: Path, dataset: str = "casme3") -> ParseResult:
    """Read a CAS(ME)³ Part A label sheet (v1 .xls or v2 .xlsx).

    Raises:
        AnnotationError: unreadable file or no header with the Part A columns.
    """
    table = find_table(path, REQUIRED, OPTIONAL, sheets=("label",))
    out = Collector(dataset)
    cols = (table.header("onset"), table.header("apex"), table.header("offset"))
    out.no_au_column(table)
    version = "v1" if "v1" in Path(path).name.lower() else "v2" if "v2" in Path(path).name.lower() else ""
    for row, r in table.rows():
        subject, filename = text(r["subject"]), text(r["filename"])
        clip = f"{subject}/{filename}"
        if not subject or not filename:
            out.issue(row, clip, table.header("subject"), "missing subject or filename", fatal=True)
            continue
        # Keyed by the onset as written, so that a repaired range keeps the key a user can look up.
        written_onset = int_cell(r["onset"])
        sid = clip if written_onset is None else sample_key(subject, filename, written_onset)
        frames = out.frames(row, sid, cols, r["onset"], r["apex"], r["offset"])
        if frames is None:
            continue
        if filename != filename.lower():
            # Part A's clip folders are lower-case letters; the layout looks them up case-insensitively.
            out.issue(
                row,
                sid,
                table.header("filename"),
                f"upper-case filename {filename!r} (folders are lower-case)",
            )
        emotion = canonical_emotion(text(r["emotion"]))
        if not emotion:
            out.issue(row, sid, table.header("emotion"), "no emotion")
        parsed, au_text = out.row_aus(table, row, sid, r)
        extras = dict(frames.extras())
        if version:
            extras["version"] = version
        if table.has("objective") and text(r["objective"]):
            extras["objective_class"] = text(r["objective"])
        out.add(
            Sample(
                dataset=dataset,
                subject=subject,
                sample_id=sid,
                source=clip,
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
