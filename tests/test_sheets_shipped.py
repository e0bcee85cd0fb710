"""The parsers on the project's own small sheets (tests/data/sheets, written by make_sheets.py): always run.

Expected values are typed from the rows of make_sheets.py, with Excel row numbers counted by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mer.protocols.sample import AU, AnnotationError
from mer.protocols.sheets.casme2 import parse_casme2
from mer.protocols.sheets.casme3 import parse_casme3
from mer.protocols.sheets.dfme import parse_dfme
from mer.protocols.sheets.megc2019 import parse_megc2019
from mer.protocols.sheets.samm import parse_samm
from mer.protocols.stats import dataset_stats, format_stats

SHEETS = Path(__file__).resolve().parent / "data" / "sheets"


@pytest.mark.parametrize("name", ["CASME2-coding-20190701.xlsx", "CASME2-coding-20140508.xlsx"])
def test_casme2_both_revisions(name):
    res = parse_casme2(SHEETS / name)
    assert len(res.samples) == 10
    first = res.samples[0]
    # The 2014 file stores subjects as Excel integers: they come back zero-padded.
    assert (first.subject, first.sample_id, first.source) == ("01", "sub01/EP02_01f", "sub01/EP02_01f")
    assert (first.onset, first.apex, first.offset, first.row) == (46, 59, 86, 2)
    assert first.aus == (AU(12),) and first.au_text == "12"
    assert first.extras["revision"] == name[14:18]
    assert ("objective_class" in first.extras) == (name.endswith("0701.xlsx"))
    slash = res.samples[5]
    assert slash.sample_id == "sub04/EP12_01f" and slash.apex is None
    assert [(i.row, i.field) for i in res.issues] == [(7, "ApexFrame"), (11, "ApexFrame")]
    assert res.samples[9].extras["sheet_frames"] == ["6", "96", "46"]


def test_casme2_stats_per_protocol():
    s5 = dataset_stats("casme2", SHEETS / "CASME2-coding-20190701.xlsx", "loso-casme2-5")
    assert s5["class_counts"] == {"disgust": 2, "happiness": 2, "others": 2, "repression": 1, "surprise": 1}
    assert (s5["n_samples"], s5["n_subjects"], s5["n_folds"]) == (8, 4, 4)
    s3 = dataset_stats("casme2", SHEETS / "CASME2-coding-20190701.xlsx", "loso-casme2-3")
    # The paper's negative: disgust 2 + repression 1 + fear 1 + sadness 1.
    assert s3["class_counts"] == {"negative": 5, "positive": 2, "surprise": 1}
    # A sheet that does not give the protocol's fold count says so.
    assert {
        "row": None,
        "sample": "",
        "field": "folds",
        "problem": "4 folds where loso-casme2-3 defines 25",
    } in s3["issues"]


@pytest.mark.parametrize("name", ["SAMM_Micro_FACS_Codes_v2.xlsx", "SAMM_Micro_FACS_Codes_v2.csv"])
def test_samm_xlsx_and_csv_export(name):
    res = parse_samm(SHEETS / name)
    assert len(res.samples) == 9  # the duplicate key is refused
    s = res.samples[0]
    assert (s.subject, s.sample_id, s.source, s.row) == ("006", "006_1_2", "006/006_1_2", 15)
    assert s.emotion == "anger" and s.extras["inducement_code"] == "1"
    assert res.samples[1].aus == (AU(4),)  # Excel integer AU
    assert [s.emotion for s in res.samples][4:6] == ["happiness", "others"]
    by_row = {(i.row, i.field): i for i in res.issues}
    assert set(by_row) == {(21, "Action Units"), (22, "Action Units"), (23, "Apex Frame"), (24, "key")}
    assert by_row[(24, "key")].fatal and "first at row 23" in by_row[(24, "key")].problem
    assert not by_row[(23, "Apex Frame")].fatal
    assert res.samples[4].aus == (AU(6, "R", alternatives=(AU(12, "R"),)), AU(15, "R"))


def test_samm_stats_and_text_report():
    stats = dataset_stats("samm", SHEETS / "SAMM_Micro_FACS_Codes_v2.xlsx", "loso-samm-3")
    assert stats["class_counts"] == {"negative": 6, "positive": 1, "surprise": 1}
    assert stats["n_subjects"] == 4
    text = format_stats(stats, "samm")
    assert "row 24 (010_5_1) key: unusable: duplicate sample key (first at row 23)" in text
    assert "negative" in text and "8 samples" in text


@pytest.mark.parametrize(
    "name", ["cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "cas(me)3_part_A_ME_label_JpgIndex_v1.xls"]
)
def test_casme3_v1_xls_and_v2_xlsx(name):
    res = parse_casme3(SHEETS / name)
    assert [s.sample_id for s in res.samples][:3] == ["spNO.1/a/355", "spNO.1/e/62", "spNO.1/e/96"]
    assert res.samples[1].source == res.samples[2].source == "spNO.1/e"  # one clip, two samples
    assert [s.emotion for s in res.samples][1:4] == ["others", "happiness", "sadness"]
    assert res.samples[3].aus == (AU(16), AU(18, "T"), AU(24))
    zero = res.samples[7]
    assert (zero.onset, zero.apex, zero.offset) == (1812, 1824, 1824)  # offset 0 → the apex
    assert zero.extras["sheet_frames"] == ["1812", "1824", "0"]
    assert [(i.row, i.field) for i in res.issues] == [(7, "Filename"), (8, "Apex"), (9, "Offset")]
    assert res.samples[0].extras["version"] == name.split("_")[-1][:2]
    stats = dataset_stats("casme3", SHEETS / name, "loso-casme3-4")
    assert stats["class_counts"] == {"negative": 4, "positive": 1, "surprise": 1, "others": 2}


def test_dfme_lists():
    res = parse_dfme(SHEETS / "dfme")
    assert len(res.samples) == 9
    # Planted: the train list labels a disgust sample 0 (anger); reported, the folder's emotion kept.
    assert [(i.row, i.field, i.fatal) for i in res.issues] == [
        (2, "train_dfme_ccac_7class_emolabel_list.txt", False)
    ]
    assert res.samples[1].emotion == "disgust"
    s = res.samples[0]
    assert (s.subject, s.sample_id, s.emotion, s.extras["split"]) == (
        "sub0003",
        "sub0003-03a-01-anger-01-anger",
        "anger",
        "train",
    )
    assert res.samples[1].aus == (AU(4), AU(12, "R"))  # "Brow Lowerer, Right Lip Corner Puller"
    stats = dataset_stats("dfme", SHEETS / "dfme", "dfme-test-b")
    assert stats["split_counts"] == {"train": 4, "test-b": 2} and stats["n_folds"] == 1
    one = parse_dfme(SHEETS / "dfme" / "testA_dfme_ccac_7class_emolabel_list.txt")
    assert {s.extras["split"] for s in one.samples} == {"test-a"}


def test_dfme_label_disagreement_is_reported(tmp_path):
    (tmp_path / "train_x_emolabel_list.txt").write_text("anger/sub0001-a 3\nbad line\n")
    res = parse_dfme(tmp_path)
    assert [(i.row, i.fatal) for i in res.issues] == [(1, False), (2, True)]
    assert "label 3 (fear) disagrees" in res.issues[0].problem


def test_megc2019_csv():
    res = parse_megc2019(SHEETS / "combined_3class_gt.csv")
    assert len(res.samples) == 9
    samm = res.samples[6]
    assert (samm.subject, samm.source, samm.emotion) == ("samm/6", "samm/006/006_1_2", "negative")
    stats = dataset_stats("megc2019", SHEETS / "combined_3class_gt.csv", "megc2019")
    assert stats["class_counts"] == {"negative": 4, "positive": 3, "surprise": 2}
    assert stats["n_folds"] == 6


def test_no_protocol_counts_emotions():
    stats = dataset_stats("casme3", SHEETS / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    assert stats["protocol"] is None and stats["n_folds"] is None
    assert stats["class_counts"]["others"] == 2 and stats["n_samples"] == 8


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        parse_samm(tmp_path / "missing.xlsx")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(AnnotationError, match=r"bad\.csv: no header row"):
        parse_casme2(bad)
    with pytest.raises(ValueError, match="defined on dataset 'samm'"):
        dataset_stats("casme2", SHEETS / "CASME2-coding-20190701.xlsx", "loso-samm-3")


def test_unusable_row_is_fatal(tmp_path):
    sheet = tmp_path / "c.csv"
    sheet.write_text(
        "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion\n"
        "01,EP01,x,5,9,4,disgust\n01,EP02,1,/,0,4,disgust\n01,EP03,1,3,5,4,disgust\n"
    )
    res = parse_casme2(sheet)
    assert [s.sample_id for s in res.samples] == ["sub01/EP03"]
    assert [(i.row, i.field, i.fatal) for i in res.issues] == [
        (2, "OnsetFrame", True),
        (3, "ApexFrame", False),
        (3, "OffsetFrame", True),
    ]


def test_stats_report_json_form():
    import json

    from mer.protocols.stats import stats_report

    out = json.loads(
        stats_report("samm", SHEETS / "SAMM_Micro_FACS_Codes_v2.csv", "loso-samm-5", as_json=True)
    )
    assert set(out) == {"protocol", "n_samples", "class_counts", "n_subjects", "n_folds", "issues"}
    assert out["class_counts"] == {"anger": 2, "contempt": 1, "happiness": 1, "others": 1, "surprise": 1}
    assert all(set(i) == {"row", "sample", "field", "problem"} for i in out["issues"])
    assert {
        "row": 22,
        "sample": "010_4_1",
        "field": "Action Units",
        "problem": "unparsed: 'soft focus' is not an AU",
    } in out["issues"]
