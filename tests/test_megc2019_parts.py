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
