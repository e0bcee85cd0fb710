"""Sheets as people hold them: header or none, word labels, extra columns, the usual column spellings.

Every sheet here is written by the test from rows typed below; expected values are read off those rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from mer.cli import app
from mer.errors import ExitCode, InputError
from mer.protocols.sample import AU, AnnotationError
from mer.protocols.sheets.casme2 import parse_casme2
from mer.protocols.sheets.casme3 import parse_casme3
from mer.protocols.sheets.megc2019 import parse_megc2019
from mer.protocols.sheets.samm import parse_samm
from mer.protocols.stats import dataset_stats

# dataset, subject, filename, 3-class label index
COMPOSITE = [
    ("casme2", "sub01", "EP02_01f", 1),
    ("casme2", "sub02", "EP01_11f", 0),
    ("smic", "s01", "s01_ne_01", 0),
    ("smic", "s02", "s02_sur_01", 2),
    ("samm", "6", "006_1_2", 0),
    ("samm", "7", "007_5_3", 1),
]
IDS = [f"{d}/{s}/{f}" for d, s, f, _ in COMPOSITE]
WORDS = ["negative", "positive", "surprise"]
EXPECTED = ["positive", "negative", "negative", "surprise", "negative", "positive"]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_megc2019_header_with_word_labels_and_extra_columns(tmp_path):
    # The form that circulates: a header, frame and AU columns, words in mixed case.
    sheet = _write(
        tmp_path / "composite.csv",
        ["Dataset, Subject, Filename, Onset, Apex, Offset, AU, Estimated Emotion, Notes"]
        + [
            "casme2,sub01,EP02_01f,46,59,86,12,Positive,x",
            "casme2,sub02,EP01_11f,10,20,30,4+7,NEGATIVE,",
            "smic,s01,s01_ne_01,,,,,negative,",
            "smic,s02,s02_sur_01,,,,,surprise,",
            "samm,6,006_1_2,5562,5588,5632,R12,negative,",
            "samm,7,007_5_3,100,/,140,12,positive,",
        ],
    )
    res = parse_megc2019(sheet)
    assert [s.sample_id for s in res.samples] == IDS
    assert [s.emotion for s in res.samples] == EXPECTED
    first, smic, samm = res.samples[0], res.samples[2], res.samples[4]
    assert (first.onset, first.apex, first.offset, first.aus) == (46, 59, 86, (AU(12),))
    assert first.row == 2 and "frame_range" not in first.extras
    # A row with blank frame cells uses its whole folder.
    assert smic.extras["frame_range"] == "folder" and smic.apex is None
    assert samm.source == "samm/006/006_1_2" and samm.subject == "samm/6"
    # The unknown apex "/" is kept as unknown and reported, not fatal.
    assert res.samples[5].apex is None
    assert [(i.row, i.fatal) for i in res.issues] == [(7, False)]


def test_megc2019_headerless_numeric_and_words_read_the_same(tmp_path):
    numeric = _write(tmp_path / "n.csv", [f"{d},{s},{f},{y}" for d, s, f, y in COMPOSITE])
    words = _write(tmp_path / "w.csv", [f"{d},{s},{f},{WORDS[y].title()},extra" for d, s, f, y in COMPOSITE])
    for sheet in (numeric, words):
        res = parse_megc2019(sheet)
        assert [s.sample_id for s in res.samples] == IDS
        assert [s.emotion for s in res.samples] == EXPECTED
        assert res.samples[0].row == 1 and res.issues == []
        assert all(s.extras["frame_range"] == "folder" for s in res.samples)


def test_megc2019_source_emotion_words_fold_to_three_classes(tmp_path):
    sheet = _write(
        tmp_path / "e.csv",
        ["subject,dataset,label,video"]  # another column order, another spelling of filename
        + ["sub01,casme2,Happiness,EP02_01f", "sub02,casme2,disgust,EP01_11f", "s01,smic,others,x"],
    )
    res = parse_megc2019(sheet)
    assert [(s.sample_id, s.emotion) for s in res.samples] == [
        ("casme2/sub01/EP02_01f", "positive"),
        ("casme2/sub02/EP01_11f", "negative"),
    ]
    assert res.samples[0].extras["sheet_label"] == "Happiness"
    assert [(i.row, i.field, i.fatal) for i in res.issues] == [(4, "label", True)]
    assert "'others' is not 0, 1, 2 or negative / positive / surprise" in res.issues[0].problem


def test_megc2019_header_without_label_names_found_and_needed_columns(tmp_path):
    sheet = _write(
        tmp_path / "nolabel.csv",
        ["Dataset,Subject,Filename,Onset,Apex,Offset,AU,Objective Class", "casme2,sub01,EP02_01f,1,2,3,4,1"],
    )
    with pytest.raises(AnnotationError) as e:
        parse_megc2019(sheet)
    msg = str(e.value)
    assert "has Dataset, Subject, Filename, Onset, Apex, Offset, AU, Objective Class" in msg
    assert "missing emotion (Label / Estimated Emotion / Emotion" in msg


def test_zero_usable_samples_is_an_error_not_a_table_of_zeros(tmp_path):
    sheet = _write(tmp_path / "z.csv", ["casme2,sub01,EP02_01f,7", "casme2,sub02,EP01_11f,maybe"])
    with pytest.raises(AnnotationError, match=r"z\.csv: no usable sample: 2 unusable row\(s\)") as e:
        parse_megc2019(sheet)
    assert "read by position as dataset, subject, filename, label" in str(e.value)
    assert "row 1 (casme2/sub01/EP02_01f), label: label '7'" in str(e.value)
    # Bad input, not a bug: the CLI maps it to its own exit code.
    assert isinstance(e.value, InputError) and e.value.exit_code == ExitCode.BAD_INPUT


def test_stats_under_a_protocol_that_keeps_nothing_is_an_error(tmp_path):
    sheet = _write(
        tmp_path / "c.csv",
        ["Subject,Filename,Onset,Apex,Offset,AU,Emotion", "01,EP01,1,2,3,4,others", "02,EP02,1,2,3,4,Others"],
    )
    with pytest.raises(AnnotationError, match=r"no sample of loso-casme2-3's classes .*emotions: others"):
        dataset_stats("casme2", sheet, "loso-casme2-3")


def test_casme2_and_samm_csv_reexports_with_short_names(tmp_path):
    # Re-exported with Onset / Apex / Offset / Label and no AU column.
    casme2 = _write(
        tmp_path / "casme2.csv",
        [
            "Subject,Filename,Onset,Apex,Offset,Label",
            "1,EP02_01f,46,59,86,happiness",
            "4,EP12_01f,10,/,30,Disgust",
        ],
    )
    res = parse_casme2(casme2)
    assert [(s.sample_id, s.onset, s.apex, s.offset, s.emotion) for s in res.samples] == [
        ("sub01/EP02_01f", 46, 59, 86, "happiness"),
        ("sub04/EP12_01f", 10, None, 30, "disgust"),
    ]
    assert res.samples[0].aus == () and res.samples[0].au_text == ""
    assert [(i.row, i.field) for i in res.issues] == [(None, "AU"), (3, "Apex")]
    samm = _write(
        tmp_path / "samm.csv",
        [
            "  SUBJECT , file name ,onset_frame,Apex frame,OFFSET,au,emotion",
            "006,006_1_2,5562,5588,5632,R12,Anger",
        ],
    )
    s = parse_samm(samm).samples[0]
    assert (s.subject, s.sample_id, s.onset, s.apex, s.offset, s.emotion) == (
        "006",
        "006_1_2",
        5562,
        5588,
        5632,
        "anger",
    )
    assert s.aus == (AU(12, side="R"),)


def test_casme3_xlsx_with_synonym_headers(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.title = "label"
    ws.append(
        ["sub", "Video", "Onset Frame", "ApexFrame", "Offset_Frame", "Action Units", "Estimated Emotion"]
    )
    ws.append(["spNO.1", "e", 62, 70, 80, "4", "disgust"])
    path = tmp_path / "casme3.xlsx"
    wb.save(path)
    s = parse_casme3(path).samples[0]
    assert (s.sample_id, s.onset, s.apex, s.offset, s.emotion, s.aus) == (
        "spNO.1/e/62",
        62,
        70,
        80,
        "disgust",
        (AU(4),),
    )


def test_missing_columns_name_what_was_found_and_what_is_needed(tmp_path):
    sheet = _write(tmp_path / "x.csv", ["Subject,Filename,Start,Peak,End,Emotion", "01,EP01,1,2,3,anger"])
    with pytest.raises(AnnotationError) as e:
        parse_casme2(sheet)
    msg = str(e.value)
    assert "row 1 has Subject, Filename, Start, Peak, End, Emotion" in msg
    assert "missing onset (OnsetFrame / Onset / Onset Frame" in msg
    assert "apex (ApexFrame" in msg and "offset (OffsetFrame" in msg


def test_cli_data_stats_megc2019_forms_and_zero_sample_exit(tmp_path, monkeypatch):
    monkeypatch.setenv("MER_HOME", str(tmp_path / "home"))
    header = _write(
        tmp_path / "h.csv",
        ["Dataset,Subject,Filename,Onset,Apex,Offset,AU,Estimated Emotion"]
        + [f"{d},{s},{f},,,,,{WORDS[y].upper()}" for d, s, f, y in COMPOSITE],
    )
    bare = _write(tmp_path / "b.csv", [f"{d},{s},{f},{y}" for d, s, f, y in COMPOSITE])
    for sheet in (header, bare):
        r = CliRunner().invoke(
            app, ["data", "stats", "megc2019", "--annotations", str(sheet), "--protocol", "megc2019"]
        )
        assert r.exit_code == 0, r.output
        lines = r.output.splitlines()
        assert lines[0] == "megc2019 megc2019: 6 samples, 6 subjects, 6 folds"
        assert [ln.split() for ln in lines[1:4]] == [["negative", "3"], ["positive", "2"], ["surprise", "1"]]
    bad = _write(
        tmp_path / "bad.csv",
        ["Dataset,Subject,Filename,Onset,Apex,Offset,AU,Code"] + ["casme2,sub01,EP02_01f,1,2,3,4,1"],
    )
    r = CliRunner().invoke(app, ["data", "stats", "megc2019", "--annotations", str(bad)])
    assert r.exit_code == ExitCode.BAD_INPUT  # an AnnotationError is bad input (3) in mer's exit codes
    out = " ".join(r.output.split())
    assert "has Dataset, Subject, Filename, Onset, Apex, Offset, AU, Code" in out
    assert "missing emotion (Label" in out
