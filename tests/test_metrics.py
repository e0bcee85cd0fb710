import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from mer.protocols.metrics import emotion_metrics, per_fold_summary

CLASSES = ("negative", "positive", "surprise")


def test_hand_worked_example():
    # 6 samples: truth n n n p p s, prediction n n p p s s.
    # negative: TP 2 FP 0 FN 1 -> F1 4/5, recall 2/3; positive: TP 1 FP 1 FN 1 -> 1/2, 1/2;
    # surprise: TP 1 FP 1 FN 0 -> 2/3, 1.
    m = emotion_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], CLASSES)
    assert m["uf1"] == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)
    assert m["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["acc"] == pytest.approx(4 / 6)
    assert m["wf1"] == pytest.approx((3 * 4 / 5 + 2 * 1 / 2 + 1 * 2 / 3) / 6)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["positive"] == {"f1": 0.5, "recall": 0.5, "support": 2}


def test_class_absent_from_truth_and_predictions_is_skipped():
    # Surprise never occurs: it is left out of UF1 and UAR instead of counting as 0.
    m = emotion_metrics([0, 0, 1], [0, 1, 1], CLASSES)
    assert m["per_class"]["surprise"]["f1"] is None
    assert m["uf1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert m["uar"] == pytest.approx((1 / 2 + 1) / 2)


def test_class_predicted_but_absent_from_truth_counts_zero_f1():
    m = emotion_metrics([0, 0, 1], [0, 2, 1], CLASSES)
    assert m["per_class"]["surprise"] == {"f1": 0.0, "recall": None, "support": 0}
    assert m["uf1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["uar"] == pytest.approx((1 / 2 + 1) / 2)  # recall only over classes in the truth


def test_single_class_fold_all_correct_is_one():
    m = emotion_metrics([1, 1], [1, 1], CLASSES)
    assert m["uf1"] == 1.0 and m["uar"] == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    yt, yp = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    agree = rng.random(200) < 0.4  # correlated predictions, as a real model's
    yp[agree] = yt[agree]
    classes = tuple("abcde")
    m = emotion_metrics(yt, yp, classes)
    present = sorted(set(yt) | set(yp))
    assert m["uf1"] == pytest.approx(f1_score(yt, yp, average="macro", labels=present))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(yt, yp))
    assert m["acc"] == pytest.approx(accuracy_score(yt, yp))
    assert m["wf1"] == pytest.approx(f1_score(yt, yp, average="weighted"))
    assert np.array_equal(np.array(m["confusion"]), confusion_matrix(yt, yp, labels=range(5)))


def test_per_fold_mean_and_std():
    yt = np.array([0, 0, 1, 1])
    yp = np.array([0, 0, 1, 0])
    folds = np.array([0, 0, 1, 1])
    s = per_fold_summary(yt, yp, folds, CLASSES)
    # fold 0: perfect -> acc 1; fold 1: one of two right -> acc 0.5.
    assert s["acc"]["mean"] == pytest.approx(0.75) and s["acc"]["std"] == pytest.approx(0.25)
    # fold 1: negative F1 = 0 (TP 0, FP 1), positive F1 = 2/3 -> UF1 1/3.
    assert s["uf1"]["mean"] == pytest.approx((1 + 1 / 3) / 2)
