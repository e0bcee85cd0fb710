"""The real sheets of ../shared/fixtures reproduce MER-CLIP's Table III and the fixtures README's folds.

Skipped when ../shared is absent; tests/test_sheets_shipped.py runs the same code on the project's own sheets.
"""

from __future__ import annotations

import json

import pytest

from mer.protocols.stats import dataset_stats

SHEETS = {
    "casme2": "casme2/CASME2-coding-20190701.xlsx",
    "samm": "samm/SAMM_Micro_FACS_Codes_v2.xlsx",
    "casme3": "casme3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
    "dfme": "merclip_lists/dfme",
    "megc2019": "megc2019/combined_3class_gt.csv",
}

# (dataset, protocol, samples, per class, folds): typed from the fixtures README (Table III + LOSO folds).
TABLE_III = [
    (
        "samm",
        "loso-samm-5",
        136,
        {"anger": 57, "contempt": 12, "happiness": 26, "others": 26, "surprise": 15},
        27,
    ),
    ("samm", "loso-samm-3", 133, {"negative": 92, "positive": 26, "surprise": 15}, 28),
    (
        "casme2",
        "loso-casme2-5",
        249,
        {"disgust": 63, "happiness": 32, "others": 99, "repression": 27, "surprise": 28},
        26,
    ),
    ("casme2", "loso-casme2-3", 156, {"negative": 96, "positive": 32, "surprise": 28}, 25),
    (
        "casme3",
        "loso-casme3-7",
        860,
        {
            "anger": 64,
            "disgust": 250,
            "fear": 86,
            "happiness": 55,
            "others": 161,
            "sadness": 57,
            "surprise": 187,
        },
        94,
    ),
    ("casme3", "loso-casme3-4", 860, {"negative": 457, "positive": 55, "surprise": 187, "others": 161}, 94),
    ("casme3", "loso-casme3-3", 699, {"negative": 457, "positive": 55, "surprise": 187}, 88),
    ("megc2019", "megc2019", 442, None, 68),
]


@pytest.mark.parametrize(
    ("dataset", "protocol", "n", "per_class", "folds"), TABLE_III, ids=lambda v: str(v)[:20]
)
def test_table_iii_counts(shared_fixtures, dataset, protocol, n, per_class, folds):
    stats = dataset_stats(dataset, shared_fixtures / "annotations" / SHEETS[dataset], protocol)
    assert stats["n_samples"] == n
    if per_class is not None:
        assert stats["class_counts"] == per_class
        assert list(stats["class_counts"]) == list(per_class)  # label-index order of SPEC A.1
    assert stats["n_folds"] == folds
    assert not any(i["field"] == "folds" for i in stats["issues"])


@pytest.mark.parametrize(
    ("protocol", "train", "test", "test_counts"),
    [
        (
            "dfme-test-a",
            1856,
            474,
            {
                "anger": 39,
                "contempt": 34,
                "disgust": 129,
                "fear": 62,
                "happiness": 63,
                "sadness": 46,
                "surprise": 101,
            },
        ),
        (
            "dfme-test-b",
            1856,
            299,
            {
                "anger": 41,
                "contempt": 37,
                "disgust": 58,
                "fear": 38,
                "happiness": 42,
                "sadness": 35,
                "surprise": 48,
            },
        ),
    ],
)
def test_dfme_splits(shared_fixtures, protocol, train, test, test_counts):
    from collections import Counter

    from mer.protocols.protocol import PROTOCOLS
    from mer.protocols.sheets.dfme import parse_dfme

    stats = dataset_stats("dfme", shared_fixtures / "annotations" / SHEETS["dfme"], protocol)
    assert stats["split_counts"] == {"train": train, protocol.replace("dfme-", ""): test}
    assert stats["n_samples"] == train + test and stats["n_folds"] == 1
    p = PROTOCOLS.get(protocol)
    kept, labels = p.select(parse_dfme(shared_fixtures / "annotations" / SHEETS["dfme"]).samples)
    (fold,) = p.folds(kept)
    assert (len(fold.train), len(fold.test)) == (train, test)
    assert Counter(p.classes[labels[i]] for i in fold.test) == test_counts
    # SPEC A.1: the training list's classes.
    assert Counter(p.classes[labels[i]] for i in fold.train) == {
        "anger": 161,
        "contempt": 100,
        "disgust": 548,
        "fear": 265,
        "happiness": 206,
        "sadness": 278,
        "surprise": 298,
    }


def test_megc2019_composite(shared_fixtures):
    from mer.protocols.sheets.megc2019 import parse_megc2019

    res = parse_megc2019(shared_fixtures / "annotations" / SHEETS["megc2019"])
    by_source = {}
    for s in res.samples:
        by_source.setdefault(s.extras["source_dataset"], set()).add(s.subject)
    assert {k: len(v) for k, v in by_source.items()} == {"casme2": 24, "samm": 28, "smic": 16}
    assert res.samples[309].source == "samm/006/006_1_2"


def test_validation_report_names_each_odd_row(shared_fixtures):
    ann = shared_fixtures / "annotations"
    casme2 = dataset_stats("casme2", ann / SHEETS["casme2"], "loso-casme2-5")["issues"]
    assert casme2 == [
        {
            "row": 31,
            "sample": "sub04/EP12_01f",
            "field": "ApexFrame",
            "problem": "unknown apex '/'; kept with apex unknown",
        }
    ]
    samm = {
        (i["row"], i["sample"], i["field"]) for i in dataset_stats("samm", ann / SHEETS["samm"])["issues"]
    }
    # Excel rows: apex after the offset (028_4_1), apex before the onset (032_3_1), "soft focus".
    assert {
        (140, "028_4_1", "Apex Frame"),
        (147, "032_3_1", "Apex Frame"),
        (135, "026_5_1", "Action Units"),
    } <= samm
    casme3 = dataset_stats("casme3", ann / SHEETS["casme3"])["issues"]
    offsets0 = [i for i in casme3 if i["problem"].startswith("offset 0")]
    assert [(i["row"], i["sample"]) for i in offsets0] == [(798, "spNO.40/e/1812"), (800, "spNO.40/e/2327")]
    assert any(i["row"] == 751 and "before onset" in i["problem"] for i in casme3)
    assert not any(i["problem"].startswith("unusable") for i in casme3)
    json.dumps(casme3)  # the JSON form is plain data


def test_subjects_are_text_with_leading_zeros(shared_fixtures):
    from mer.protocols.sheets.casme2 import parse_casme2
    from mer.protocols.sheets.samm import parse_samm

    ann = shared_fixtures / "annotations"
    samm = parse_samm(ann / SHEETS["samm"]).samples
    assert samm[0].subject == "006" and samm[0].source == "006/006_1_2" and samm[0].onset == 5562
    casme2 = parse_casme2(ann / SHEETS["casme2"]).samples
    assert casme2[0].subject == "01" and casme2[0].source == "sub01/EP02_01f"
    assert casme2[0].extras["revision"] == "2019"
    ep12 = next(s for s in casme2 if s.sample_id == "sub04/EP12_01f")
    assert ep12.apex is None and (ep12.onset, ep12.offset) == (261, 321)
