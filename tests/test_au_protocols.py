"""Micro-AU detection protocols: multi-label targets, per-AU metrics, the runner's AU path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _synth import small_synth

from mer.protocols.au_metrics import au_detection_metrics, au_fold_frame, au_run_metrics
from mer.protocols.au_protocols import AU_LOSO_CASME2, AU_LOSO_SAMM, AU_LOSO_SYNTH, present_aus
from mer.protocols.clipset import ClipSet
from mer.protocols.protocol import Fold
from mer.protocols.sample import AU, Sample
from mer.protocols.stats import dataset_stats
from mer.registrations import load_all
from mer.zoo.api import Predictions

load_all()


def _sample(subject: str, aus: tuple[AU, ...], sid: str = "") -> Sample:
    return Sample("synthme", subject, sid or f"{subject}/{len(aus)}", "x", 0, 1, 2, "others", aus)


def test_targets_merge_sides_count_uncertain_and_alternatives():
    # L12 → AU12; an uncertain AU4 counts; "R6 or R2" counts AU6 and AU2; AU25 is not evaluated.
    s = _sample(
        "01", (AU(12, side="L"), AU(4, uncertain=True), AU(6, "R", alternatives=(AU(2, "R"),)), AU(25))
    )
    assert present_aus(s) == {2, 4, 6, 12, 25}
    # au-loso-synth order: AU1, 2, 4, 6, 7, 9, 12, 17
    assert AU_LOSO_SYNTH.classes == ("AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU12", "AU17")
    kept, y = AU_LOSO_SYNTH.select([s, _sample("02", ())])
    assert y.tolist() == [[0, 1, 1, 1, 0, 0, 1, 0], [0] * 8]
    assert y.dtype == np.int64 and len(kept) == 2  # a clip without evaluated AUs stays, all negative


# Positives per AU over every sample of the sheet (laterality merged, uncertain and alternatives
# present), counted by eye from the sheets' "Action Units" columns:
#   CASME II (255 samples, 26 subjects): AU1 28, AU2 25, AU4 125, AU7 38, AU12 39, AU14 22, AU15 17, AU17 26
#   SAMM (159 samples, 29 subjects):    AU2 18, AU4 23, AU7 46, AU12 30
#   (SAMM AU12 is 28 without the alternatives "(R6 or R12)+R15" twice, "L12 or L14", "R12 or R14"
#    and "A/L12" adds none: the first is AU12 already.)
REAL = [
    (
        "casme2",
        "casme2/CASME2-coding-20190701.xlsx",
        AU_LOSO_CASME2,
        255,
        26,
        {"AU1": 28, "AU2": 25, "AU4": 125, "AU7": 38, "AU12": 39, "AU14": 22, "AU15": 17, "AU17": 26},
    ),
    (
        "samm",
        "samm/SAMM_Micro_FACS_Codes_v2.xlsx",
        AU_LOSO_SAMM,
        159,
        29,
        {"AU2": 18, "AU4": 23, "AU7": 46, "AU12": 30},
    ),
]


@pytest.mark.parametrize(("dataset", "sheet", "protocol", "n", "folds", "counts"), REAL)
def test_real_sheet_au_counts(shared_fixtures, dataset, sheet, protocol, n, folds, counts):
    stats = dataset_stats(dataset, shared_fixtures / "annotations" / sheet, protocol.name)
    print(dataset, stats["class_counts"])  # shown with -s, for checking by eye
    assert stats["n_samples"] == n
    assert stats["n_folds"] == folds == protocol.expected_folds
    assert stats["class_counts"] == counts
    assert not [i for i in stats["issues"] if i["field"] == "folds"]


def test_samm_alternatives_count_as_present(shared_fixtures):
    from mer.protocols.sheets.samm import parse_samm

    samples = parse_samm(shared_fixtures / "annotations" / "samm/SAMM_Micro_FACS_Codes_v2.xlsx").samples
    alt = [s for s in samples if s.au_text.replace(" ", "") == "(R6orR12)+R15"]
    assert len(alt) == 2
    _, y = AU_LOSO_SAMM.select(alt)
    assert y[:, AU_LOSO_SAMM.classes.index("AU12")].tolist() == [1, 1]


def test_au_metrics_by_hand():
    aus = ("AU1", "AU2", "AU4")
    yt = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    yp = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    m = au_detection_metrics(yt, yp, aus)
    # AU1: TP 1, FP 1, FN 1 → 2/(2+1+1) = 0.5; AU2: TP 2 → 1.0; AU4 never present nor predicted: no F1.
    assert m["per_au"]["AU1"] == {"f1": 0.5, "precision": 0.5, "recall": 0.5, "support": 2, "predicted": 2}
    assert m["per_au"]["AU2"]["f1"] == 1.0
    assert m["per_au"]["AU4"]["f1"] is None and m["per_au"]["AU4"]["support"] == 0
    assert m["mean_f1"] == pytest.approx(0.75)
    # An AU present but never predicted scores 0 and counts in the mean.
    assert au_detection_metrics(yt, np.zeros_like(yt), aus)["mean_f1"] == 0.0


def test_fold_frame_and_run_metrics():
    samples = [_sample("01", (AU(1),), "a"), _sample("01", (AU(2),), "b"), _sample("02", (AU(1), AU(2)), "c")]
    y = np.array([[1, 0], [0, 1], [1, 1]])
    clips = ClipSet(np.zeros((3, 1, 2, 2, 3), np.uint8), np.arange(3), samples, y, ("AU1", "AU2"))
    frames = []
    for fold, idx, pred in ((0, [0, 1], [[1, 1], [0, 1]]), (1, [2], [[0, 1]])):
        test = clips.subset(idx)
        p = np.asarray(pred, float) * 0.8 + 0.1
        frames.append(
            au_fold_frame(
                Fold(fold, "s", np.array([]), np.array(idx)),
                test,
                Predictions(np.asarray(pred), p),
                clips.class_names,
            )
        )
    df = pd.concat(frames, ignore_index=True)
    assert list(df.columns) == [
        "sample",
        "subject",
        "fold",
        "y_true_AU1",
        "y_pred_AU1",
        "p_AU1",
        "y_true_AU2",
        "y_pred_AU2",
        "p_AU2",
    ]
    assert df["p_AU1"].tolist() == [0.9, 0.1, 0.1]

    class P:
        classes = ("AU1", "AU2")

    m = au_run_metrics(df, P)
    # AU1: TP 1 (a), FN 1 (c) → 2/3; AU2: TP 2, FP 1 (a) → 4/5; mean 11/15.
    assert m["per_au"]["AU1"]["f1"] == pytest.approx(2 / 3)
    assert m["per_au"]["AU2"]["f1"] == pytest.approx(0.8)
    assert m["mean_f1"] == pytest.approx(11 / 15)
    # Fold 0: AU1 1.0, AU2 2/3 → 5/6; fold 1: AU1 0 (FN), AU2 1.0 → 0.5.
    assert m["per_fold"]["mean_f1"]["mean"] == pytest.approx((5 / 6 + 0.5) / 2)
    with pytest.raises(ValueError, match="expected"):
        au_fold_frame(
            Fold(0, "s", np.array([]), np.array([0])),
            clips.subset([0]),
            Predictions(np.zeros(1), np.zeros((1, 2))),
            clips.class_names,
        )


def test_au_runs_end_to_end(tmp_path):
    """au-majority and au-chance through the runner: AU columns on disk, the leaderboard's metrics."""
    from mer.protocols.runner import RunConfig, run_bench

    small_synth(tmp_path / "synth", subjects=3, clips=6)
    res = run_bench(RunConfig(model="au-majority", protocol="au-loso-synth"), runs_dir=tmp_path / "runs")
    pred = pd.read_csv(res.run_dir / "predictions.csv")
    assert {"y_true_AU12", "y_pred_AU12", "p_AU12"} <= set(pred.columns)
    metrics = json.loads((res.run_dir / "metrics.json").read_text())
    truth = pred[[f"y_true_{a}" for a in AU_LOSO_SYNTH.classes]].to_numpy()
    assert {a: d["support"] for a, d in metrics["per_au"].items()} == dict(
        zip(AU_LOSO_SYNTH.classes, truth.sum(0).tolist(), strict=True)
    )
    # Each AU is rarer than 50 % in training folds here, so the majority rule never fires: F1 0 (or
    # none for an AU absent from the test subjects too).
    assert pred[[f"y_pred_{a}" for a in AU_LOSO_SYNTH.classes]].to_numpy().sum() == 0
    assert metrics["mean_f1"] == 0.0 and metrics["folds_done"] == metrics["n_folds"] == 3
    run = json.loads((res.run_dir / "run.json").read_text())
    assert run["task"] == "au" and run["classes"] == list(AU_LOSO_SYNTH.classes)

    chance = run_bench(RunConfig(model="au-chance", protocol="au-loso-synth"), runs_dir=tmp_path / "runs")
    assert 0.0 < chance.metrics["mean_f1"] < 1.0


def test_au_model_refused_on_emotion_protocol():
    from mer.protocols.runner import RunConfig, run_bench

    with pytest.raises(ValueError, match="does au"):
        run_bench(RunConfig(model="au-majority", protocol="loso-synth-3"))
