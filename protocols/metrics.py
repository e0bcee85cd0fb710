"""Metrics of SPEC A.6: computed once over the concatenated predictions of all folds.

For each class c (one-vs-rest): ``F1_c = 2TP/(2TP+FP+FN)``, ``Recall_c = TP/(TP+FN)``;
``UF1`` is the mean F1 over the classes that occur in the ground truth or the predictions (a class
absent from both has a degenerate confusion matrix and is skipped, as in the authors' code), ``UAR``
the mean recall over the classes present in the ground truth, ``ACC`` the fraction correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C, C]`` counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def emotion_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> dict[str, Any]:
    """UF1, UAR, ACC, weighted F1, per-class F1 / recall / support and the confusion matrix.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        classes: Class names in index order.

    Returns:
        A JSON-serialisable dict (``uf1``, ``uar``, ``acc``, ``wf1``, ``per_class``, ``confusion``,
        ``classes``, ``n_samples``). Per-class F1 / recall of a class left out of the averages is None.
    """
    yt, yp = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} entries, y_pred {len(yp)}")
    c = len(classes)
    cm = confusion(yt, yp, c)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1).astype(float)  # TP + FN
    predicted = cm.sum(0).astype(float)  # TP + FP
    per_class: dict[str, dict[str, Any]] = {}
    f1s, recalls, weighted = [], [], 0.0
    for i, name in enumerate(classes):
        denom = support[i] + predicted[i]  # 2TP + FP + FN
        f1 = float(2 * tp[i] / denom) if denom > 0 else None
        rec = float(tp[i] / support[i]) if support[i] > 0 else None
        if f1 is not None:
            f1s.append(f1)
            weighted += f1 * support[i]
        if rec is not None:
            recalls.append(rec)
        per_class[name] = {"f1": f1, "recall": rec, "support": int(support[i])}
    n = len(yt)
    return {
        "uf1": float(np.mean(f1s)) if f1s else 0.0,
        "uar": float(np.mean(recalls)) if recalls else 0.0,
        "acc": float(tp.sum() / n) if n else 0.0,
        "wf1": float(weighted / n) if n else 0.0,
        "classes": list(classes),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "n_samples": int(n),
    }


def per_fold_summary(
    y_true: np.ndarray, y_pred: np.ndarray, folds: np.ndarray, classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Mean ± std (population) over folds of UF1, UAR and ACC, each fold scored on its own."""
    keys = ("uf1", "uar", "acc")
    values: dict[str, list[float]] = {k: [] for k in keys}
    for f in np.unique(folds):
        m = folds == f
        r = emotion_metrics(y_true[m], y_pred[m], classes)
        for k in keys:
            values[k].append(r[k])
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in values.items()}


def per_part_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    parts: np.ndarray,
    classes: Sequence[str],
    order: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """UF1, UAR, ACC and sample count of each part of a composite set (MEGC2019's per-dataset figures),
    each computed over that part's concatenated predictions. Parts in ``order`` first, then the others
    alphabetically; a part with no sample is left out."""
    found = set(np.unique(parts).tolist())
    names = [p for p in order if p in found] + sorted(found - set(order))
    out = {}
    for name in names:
        m = parts == name
        r = emotion_metrics(y_true[m], y_pred[m], classes)
        out[name] = {k: r[k] for k in ("uf1", "uar", "acc", "wf1", "n_samples")}
    return out
