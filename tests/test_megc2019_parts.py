"""The MEGC2019 composite reported as its challenge does: the whole set and each source dataset."""

from __future__ import annotations

import pandas as pd
import pytest

from mer.protocols.protocol import PROTOCOLS
from mer.protocols.runner import compute_metrics
from mer.registrations import load_all

load_all()


def test_metrics_json_has_each_source_dataset():
    # casme2: truth 0 0 1, predicted 0 1 1 → F1 2/3, 2/3 → UF1 2/3; recall 1/2, 1 → UAR 3/4.
    # samm: truth 2 2, predicted 2 0 → F1(surprise) 2/3, F1(negative) 0 → UF1 1/3; UAR 1/2.
    pred = pd.DataFrame(
        {
            "sample": list("abcde"),
            "subject": ["casme2/sub01", "casme2/sub01", "casme2/sub02", "samm/6", "samm/7"],
            "fold": [0, 0, 1, 2, 3],
            "y_true": [0, 0, 1, 2, 2],
            "y_pred": [0, 1, 1, 2, 0],
        }
    )
    m = compute_metrics(pred, PROTOCOLS.get("megc2019"), 4)
    parts = m["per_dataset"]
    assert list(parts) == ["casme2", "samm"]  # MEGC2019's order; a part without samples is left out
    assert parts["casme2"]["uf1"] == pytest.approx(2 / 3) and parts["casme2"]["uar"] == pytest.approx(0.75)
    assert parts["samm"]["uf1"] == pytest.approx(1 / 3) and parts["samm"]["uar"] == pytest.approx(0.5)
    assert parts["casme2"]["n_samples"] == 3 and parts["samm"]["n_samples"] == 2
    assert m["uf1"] != parts["casme2"]["uf1"]  # the composite figure is its own, over all five
    assert "per_dataset" not in compute_metrics(pred, PROTOCOLS.get("loso-casme2-3"), 4)


def test_composite_folds_are_named_after_their_subject():
    from mer.protocols.sample import Sample

    samples = [
        Sample("megc2019", s, s + "/x", s + "/x", 0, None, 0, "happiness") for s in ("samm/6", "casme2/sub02")
    ]
    names = [f.name for f in PROTOCOLS.get("megc2019").folds(samples)]
    assert sorted(names) == ["casme2/sub02", "samm/6"]  # not "subcasme2/sub02"


def _record(tmp_path, run_id, flow, per_dataset):
    from mer.leaderboard.collect import RunRecord

    run = {"run_id": run_id, "model": "ststnet", "protocol": "megc2019", "n_folds": 2, "status": "complete",
           "size": "base", "select": "last", "flow": flow}  # fmt: skip
    metrics = {"uf1": 0.5, "uar": 0.5, "acc": 0.5, "folds_done": 2, "n_folds": 2, "per_dataset": per_dataset}
    return RunRecord(tmp_path / run_id, run, metrics)


def test_leaderboard_shows_parts_beside_the_composite_and_the_flow_as_footnote(tmp_path):
    from mer.leaderboard.reported import reported_rows
    from mer.leaderboard.tables import protocol_table
    from mer.protocols.flow import flow_config

    parts = {"casme2": {"uf1": 0.61, "uar": 0.62}, "samm": {"uf1": 0.41, "uar": 0.42}}
    tvl1 = _record(tmp_path, "a-tvl1", flow_config({}).to_json(), parts)
    farneback = _record(tmp_path, "b-farneback", flow_config({"flow": "farneback"}).to_json(), parts)
    rep = [r for r in reported_rows() if r.protocol == "megc2019"]
    table = protocol_table("megc2019", rep, [tvl1, farneback], {})
    rows = {r.get("run"): r for r in table.rows if r.get("kind") == "measured"}
    a, b = rows["a-tvl1"], rows["b-farneback"]
    assert a["casme2:uf1"].value == 0.61 and a["samm:uar"].value == 0.42 and a["uf1"].value == 0.5
    assert a["smic:uf1"] is None  # no SMIC part in this run
    assert a["method"] == "ststnet ¹" and b["method"] == "ststnet ²"
    assert "¹ flow: tvl1 (OpenCV Dual TV-L1; default parameters), cached at 56×56" in table.notes
    assert "² flow: farneback (OpenCV Farnebäck; default parameters), cached at 56×56" in table.notes
