"""Writes the project's own small annotation files, one per published format (run once; outputs committed).

    .venv/bin/python tests/data/sheets/make_sheets.py

Each file mimics its real counterpart's shape (sheet names, a notes block above the SAMM header, Excel
integer AU cells, text subjects with leading zeros) and plants the oddities the real sheets have: an apex
written ``/``, an apex outside [onset, offset], an offset of 0, a duplicate key, ``ref(...)`` and
``soft focus`` AU text, mixed-case emotion synonyms. The counts the tests expect are in the test files.

No .xls writer is installed (xlwt is unmaintained), so the CAS(ME)³ v1 .xls is written as a minimal BIFF2
worksheet stream by :func:`write_biff2`, which pandas/xlrd read like any .xls.
"""

from __future__ import annotations

import struct
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent

CASME2_HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
    "Objective Classes",
]
# Subject, Filename, onset, apex, offset, AU (int = Excel integer), emotion, objective class
CASME2_ROWS = [
    ("01", "EP02_01f", 46, 59, 86, 12, "happiness", 1),
    ("01", "EP19_05f", 396, 416, 446, "4+7+L10", "disgust", 4),
    ("01", "EP03_02", 131, 139, 161, 18, "others", 7),
    ("02", "EP01_11f", 46, 91, 96, 15, "repression", 5),
    ("02", "EP06_01f", 101, 121, 141, "1+2", "surprise", 2),
    ("04", "EP12_01f", 261, "/", 321, "4+L10", "disgust", 4),  # apex written "/"
    ("04", "EP13_02f", 21, 41, 61, "R12", "happiness", 1),
    ("05", "EP09_05f", 11, 31, 51, "1+4", "fear", 6),
    ("05", "EP10_01f", 16, 26, 56, "15+17", "sadness", 6),
    ("05", "EP11_01", 6, 96, 46, 4, "others", 3),  # apex outside [onset, offset]
]


def write_casme2(path: Path, objective: bool = True, int_subjects: bool = False) -> None:
    """A CASME II coding sheet (2019 revision; ``objective=False`` for the 2014 one)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(CASME2_HEADER if objective else CASME2_HEADER[:-1])
    for subj, fn, on, ap, off, au, emo, obj in CASME2_ROWS:
        row = [int(subj) if int_subjects else subj, fn, None, on, ap, off, None, au, emo]
        ws.append(row + [obj] if objective else row)
    wb.create_sheet("Sheet2")
    wb.save(path)


SAMM_NOTES = [
    "SAMM Dataset - Master FACS Codes",
    None,
    "9/9/17 - New updates with Emotional and Objective Classes.",
    None,
    None,
    "Symbol Key:",
    '"/" = or',
    '"?" = some AU\'s continue for a while and have unclear offset',
    None,
    "AU Help:",
    '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face',
    '"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side',
    None,
]
SAMM_HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Micro",
    "Action Units",
    "Estimated Emotion",
    "Objective Classes",
    "Notes",
]
SAMM_ROWS = [
    ("006", "006_1_2", 1, 5562, 5588, 5632, "4+7", "Anger", 3, None),
    ("006", "006_1_3", 1, 3912, 3948, 3988, 4, "Anger", 3, "While blinking"),
    ("006", "006_2_4", 2, 180, 217, 274, "A12B", "Contempt", 4, None),
    ("007", "007_3_1", 3, 100, 120, 160, "4A/B", "Disgust", 3, None),
    ("007", "007_5_3", 5, 200, 230, 260, "(R6 or R12)+R15", "Happiness", 1, None),
    ("009", "009_1_1", 1, 300, 320, 340, "R14A or 17A or 24A", "Other", 7, None),
    ("009", "009_2_1", 2, 400, 420, 440, "12A+ref(24)", "Sadness", 6, None),
    ("010", "010_4_1", 4, 500, 520, 540, "R14+17+soft focus", "Surprise", 2, None),
    ("010", "010_5_1", 5, 1071, 1143, 1134, "A/L12", "Fear", 5, None),  # apex after offset
    ("010", "010_5_1", 5, 1071, 1100, 1134, "7", "Fear", 5, None),  # duplicate key
]


def write_samm_xlsx(path: Path) -> None:
    """SAMM_Micro_FACS_Codes_v2-like workbook: sheet MICRO_ONLY, notes, header on Excel row 14."""
    wb = Workbook()
    ws = wb.active
    ws.title = "MICRO_ONLY"
    for note in SAMM_NOTES:
        ws.append([note])
    ws.append(SAMM_HEADER)
    for subj, fn, ind, on, ap, off, au, emo, obj, notes in SAMM_ROWS:
        ws.append([subj, fn, ind, on, ap, off, off - on + 1, "Micro - 1/2", au, emo, obj, notes])
    wb.save(path)


def write_samm_csv(path: Path) -> None:
    """The CSV export of the same sheet (notes block included, as Excel's "Save as CSV" writes it)."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for note in SAMM_NOTES:
            w.writerow([note or ""] + [""] * 11)
        w.writerow(SAMM_HEADER)
        for subj, fn, ind, on, ap, off, au, emo, obj, notes in SAMM_ROWS:
            w.writerow([subj, fn, ind, on, ap, off, off - on + 1, "Micro - 1/2", au, emo, obj, notes or ""])


CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
CASME3_ROWS = [
    ("spNO.1", "a", 355, 359, 360, 5, "II", "others"),
    ("spNO.1", "e", 62, 68, 96, "R12", "I", "Others"),
    ("spNO.1", "e", 96, 102, 106, "R12", "I", "happy"),  # same clip, another sample
    ("spNO.1", "j", 28, 33, 49, "24+T18+16", "VII", "sad"),
    ("spNO.2", "b", 166, 175, 179, "B23", "III", "disgust"),
    ("spNO.2", "J", 1012, 1019, 1038, 14, "VII", "anger"),  # upper-case filename
    ("spNO.3", "d", 112, 83, 358, "L1+L2", "V", "fear"),  # apex before onset
    ("spNO.3", "e", 1812, 1824, 0, "4+R12", "V", "surprise"),  # offset 0
]


def write_casme3_xlsx(path: Path) -> None:
    """v2 JpgIndex workbook: sheet ``label`` first, then two empty sheets; frame numbers as text."""
    wb = Workbook()
    ws = wb.active
    ws.title = "label"
    ws.append(CASME3_HEADER)
    for subj, fn, on, ap, off, au, obj, emo in CASME3_ROWS:
        ws.append([subj, fn, str(on), str(ap), str(off), str(au), obj, emo])
    wb.create_sheet("Sheet1")
    wb.create_sheet("Sheet3")
    wb.save(path)


def write_biff2(path: Path, rows: list[list[object]]) -> None:
    """A one-worksheet BIFF2 .xls: numbers as NUMBER records, the rest as 8-bit LABEL records."""

    def record(rid: int, data: bytes) -> bytes:
        return struct.pack("<HH", rid, len(data)) + data

    ncols = max(len(r) for r in rows)
    out = [
        record(0x0009, struct.pack("<HH", 0x0007, 0x0010)),  # BOF: BIFF2 worksheet
        record(0x0042, struct.pack("<H", 1252)),  # CODEPAGE: Windows-1252
        record(0x0000, struct.pack("<HHHH", 0, len(rows), 0, ncols)),
    ]  # DIMENSIONS
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, (int, float)):
                out.append(record(0x0003, struct.pack("<HH3sd", i, j, b"\0\0\0", float(v))))
            else:
                raw = str(v).encode("ascii")
                out.append(record(0x0004, struct.pack("<HH3sB", i, j, b"\0\0\0", len(raw)) + raw))
    out.append(record(0x000A, b""))  # EOF
    path.write_bytes(b"".join(out))


def write_casme3_xls(path: Path) -> None:
    """v1-style .xls: same columns, frame numbers and integer AUs stored as Excel numbers."""
    rows: list[list[object]] = [list(CASME3_HEADER)]
    for subj, fn, on, ap, off, au, obj, emo in CASME3_ROWS:
        rows.append([subj, fn, on, ap, off, au, obj, emo])
    write_biff2(path, rows)


DFME_EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
DFME_LISTS = {
    "train": [
        ("anger", "sub0003-03a-01-anger-01-anger", 0),
        ("disgust", "sub0003-02d-01-disgust-01-disgust", 0),  # label disagrees
        ("happiness", "sub0004-01h-01-happiness-01-happiness", 4),
        ("surprise", "sub0004-06su-01-surprise-01-surprise", 6),
    ],
    "testA": [
        ("fear", "sub0008-07f-01-fear-01-fear", 3),
        ("sadness", "sub0008-03sa-02-sadness-01-sadness", 5),
        ("contempt", "sub0009-04c-01-contempt-01-contempt", 1),
    ],
    "testB": [
        ("contempt", "sub0001-04c-01-contempt-01-contempt", 1),
        ("surprise", "sub0001-06su-01-surprise-01-x", 6),
    ],
}
DFME_AU_MAP = [
    "Inner Brow Raiser",
    "a combination of Brow Lowerer, Right Lip Corner Puller",
    "Head Back",
    "a combination of Left Outer Brow Raiser, Lip Pucker",
]


def write_dfme(folder: Path) -> None:
    """The three CCAC list pairs and the AU map, in the authors' list format."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Emolabel_map.txt").write_text("\n".join(DFME_EMOTIONS) + "\n")
    (folder / "AUlabel_map_short.txt").write_text("\n".join(DFME_AU_MAP) + "\n")
    for split, items in DFME_LISTS.items():
        emo = "".join(f"{e}/{s} {lab}\n" for e, s, lab in items)
        au = "".join(f"{e}/{s} {i % len(DFME_AU_MAP)}\n" for i, (e, s, _) in enumerate(items))
        (folder / f"{split}_dfme_ccac_7class_emolabel_list.txt").write_text(emo)
        (folder / f"{split}_dfme_ccac_AUlabel_list.txt").write_text(au)


MEGC_ROWS = [
    ("casme2", "sub01", "EP02_01f", 1),
    ("casme2", "sub01", "EP19_05f", 0),
    ("casme2", "sub02", "EP01_11f", 0),
    ("smic", "s01", "s01_ne_01", 0),
    ("smic", "s02", "s02_po_01", 1),
    ("smic", "s02", "s02_sur_01", 2),
    ("samm", "6", "006_1_2", 0),
    ("samm", "7", "007_5_3", 1),
    ("samm", "7", "007_6_1", 2),
]


def write_megc(path: Path) -> None:
    """combined_3class_gt.csv: no header."""
    path.write_text("".join(f"{d},{s},{f},{lab}\n" for d, s, f, lab in MEGC_ROWS))


def main(out: Path = HERE) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_casme2(out / "CASME2-coding-20190701.xlsx")
    write_casme2(out / "CASME2-coding-20140508.xlsx", objective=False, int_subjects=True)
    write_samm_xlsx(out / "SAMM_Micro_FACS_Codes_v2.xlsx")
    write_samm_csv(out / "SAMM_Micro_FACS_Codes_v2.csv")
    write_casme3_xlsx(out / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    write_casme3_xls(out / "cas(me)3_part_A_ME_label_JpgIndex_v1.xls")
    write_dfme(out / "dfme")
    write_megc(out / "combined_3class_gt.csv")


if __name__ == "__main__":
    main()
