"""Micro-AU detection metrics (SPEC B.6, assumed standard practice) and the AU predictions table.

Per AU (binary, one-vs-rest on its own column): ``F1 = 2TP / (2TP + FP + FN)`` over the LOSO predictions
of every fold concatenated (as the emotion metrics of SPEC A.6); ``mean_f1`` is the mean over the AUs.
An AU with ``2TP + FP + FN = 0`` (never present and never predicted) has no F1 and is left out of the
mean, as a degenerate class is in the emotion metrics. Each AU also reports its support (true positives
in the ground truth), precision, recall and how often it was predicted.

Importing this module registers the ``"au"`` task with the runner (metrics and per-fold table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mer.errors import BadInputError, NonFiniteError
from mer.protocols.clipset import ClipSet
from mer.protocols.protocol import Fold, Protocol
from mer.protocols.runner import TASKS, TaskHooks
from mer.zoo.api import Predictions


def au_detection_metrics(y_true: np.ndarray, y_pred: np.ndarray, aus: Sequence[str]) -> dict[str, Any]:
    """Per-AU F1 / precision / recall / support and their mean F1.

    Args:
        y_true: ``[N, K]`` 0/1 ground truth.
        y_pred: ``[N, K]`` 0/1 predictions.
        aus: The K AU names in column order ("AU1", ...).

    Returns:
        A JSON-serialisable dict: ``mean_f1``, ``per_au`` (AU → ``f1``, ``precision``, ``recall``,
        ``support``, ``predicted``), ``aus``, ``n_samples``.
    """
    yt, yp = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if yt.shape != yp.shape or yt.ndim != 2 or yt.shape[1] != len(aus):
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} must both be [N, {len(aus)}]")
    per_au: dict[str, dict[str, Any]] = {}
    f1s = []
    for k, name in enumerate(aus):
        t, p = yt[:, k] == 1, yp[:, k] == 1
        tp, fp, fn = int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))
        denom = 2 * tp + fp + fn
        f1 = 2 * tp / denom if denom else None
        if f1 is not None:
            f1s.append(f1)
        per_au[name] = {
            "f1": f1,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "support": int(t.sum()),
            "predicted": int(p.sum()),
        }
    return {
        "mean_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_au": per_au,
        "aus": list(aus),
        "n_samples": int(len(yt)),
    }


def au_columns(pred: pd.DataFrame, aus: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)``, each ``[N, K]``, from a predictions table's ``y_true_<AU>`` / ``y_pred_<AU>``."""
    missing = [c for a in aus for c in (f"y_true_{a}", f"y_pred_{a}") if c not in pred.columns]
    if missing:
        raise BadInputError(f"predictions table lacks AU column(s) {missing[:4]}")
    yt = pred[[f"y_true_{a}" for a in aus]].to_numpy(np.int64)
    yp = pred[[f"y_pred_{a}" for a in aus]].to_numpy(np.int64)
    return yt, yp


def au_run_metrics(pred: pd.DataFrame, protocol: Protocol) -> dict[str, Any]:
    """The runner's metrics for task "au": over the concatenated folds, plus per-fold mean ± std."""
    yt, yp = au_columns(pred, protocol.classes)
    m = au_detection_metrics(yt, yp, protocol.classes)
    folds = pred["fold"].to_numpy()
    scores = [au_detection_metrics(yt[folds == f], yp[folds == f], protocol.classes)["mean_f1"]
              for f in np.unique(folds)]  # fmt: skip
    m["per_fold"] = {"mean_f1": {"mean": float(np.mean(scores)), "std": float(np.std(scores))}}
    return m


def au_fold_frame(fold: Fold, test: ClipSet, pred: Predictions, aus: tuple[str, ...]) -> pd.DataFrame:
    """One fold's AU predictions: ``sample, subject, fold`` and per AU ``y_true_, y_pred_, p_``.

    Raises:
        ValueError: the model's outputs are not ``[N, K]``.
        FloatingPointError: a probability is not finite.
    """
    n, k = len(test), len(aus)
    probs = np.asarray(pred.probs, dtype=np.float64)
    labels = np.asarray(pred.labels)
    truth = np.asarray(test.labels)
    if probs.shape != (n, k) or labels.shape != (n, k) or truth.shape != (n, k):
        raise ValueError(
            f"fold {fold.index}: AU model returned probs {probs.shape} / labels {labels.shape} "
            f"(truth {truth.shape}), expected ({n}, {k})"
        )
    if not np.all(np.isfinite(probs)):
        raise NonFiniteError(f"fold {fold.index}: model returned non-finite AU probabilities")
    df = pd.DataFrame({"sample": test.sample_ids, "subject": test.subjects, "fold": fold.index})
    for j, a in enumerate(aus):
        df[f"y_true_{a}"] = truth[:, j].astype(np.int64)
        df[f"y_pred_{a}"] = labels[:, j].astype(np.int64)
        df[f"p_{a}"] = probs[:, j].round(6)
    return df


TASKS.register("au", TaskHooks(metrics=au_run_metrics, fold_frame=au_fold_frame))
