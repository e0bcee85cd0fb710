"""Per-fold scores of a run, recomputed from its ``predictions.csv``, and a paired test between two runs.

``metrics.json`` keeps only the per-fold mean ± std; the fold-by-fold values a strip plot and a paired
test need are scored again here from the predictions, with the same function the runner uses, so they
cannot drift from the headline numbers.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from mer.errors import BadInputError
from mer.leaderboard.collect import RunRecord
from mer.protocols.metrics import emotion_metrics

FOLD_METRICS = ("uf1", "uar", "acc")
#: Below this many paired folds the exact Wilcoxon test cannot reach p < 0.05 even when every fold agrees.
MIN_PAIRED_FOLDS = 6


@dataclass(frozen=True)
class FoldScore:
    """One fold's scores: ``fold`` index, its ``name`` (the held-out subject), test size and metrics."""

    fold: int
    name: str
    n: int
    scores: dict[str, float]


def fold_scores(run: RunRecord) -> list[FoldScore]:
    """UF1 / UAR / ACC of each fold of an emotion run, in fold order (empty when there is nothing to score).

    Raises:
        BadInputError: ``predictions.csv`` names a class the run does not have (file and row in the message).
    """
    path = run.path / "predictions.csv"
    classes = list((run.metrics or {}).get("classes") or run.run.get("classes") or [])
    if run.task != "emotion" or not classes or not path.is_file():
        return []
    index = {c: i for i, c in enumerate(classes)}
    by_fold: dict[int, tuple[list[int], list[int]]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"fold", "y_true", "y_pred"} <= set(reader.fieldnames):
            return []
        for line, row in enumerate(reader, start=2):
            try:
                t, p = _label(row["y_true"], index), _label(row["y_pred"], index)
                fold = int(row["fold"])
            except (KeyError, ValueError) as e:
                raise BadInputError(f"{path}, row {line}: unknown class or fold ({e})") from e
            yt, yp = by_fold.setdefault(fold, ([], []))
            yt.append(t)
            yp.append(p)
    names = {int(k): str(v.get("name", "")) for k, v in (run.run.get("folds") or {}).items() if k.isdigit()}
    out = []
    for fold in sorted(by_fold):
        yt, yp = by_fold[fold]
        m = emotion_metrics(yt, yp, classes)
        out.append(FoldScore(fold, names.get(fold, ""), len(yt), {k: float(m[k]) for k in FOLD_METRICS}))
    return out


def _label(value: str, index: dict[str, int]) -> int:
    """A class given by name or by index (the runner writes indices; hand-made files may use names)."""
    if value in index:
        return index[value]
    i = int(value)
    if not 0 <= i < len(index):
        raise KeyError(value)
    return i


@dataclass(frozen=True)
class PairedTest:
    """A Wilcoxon signed-rank test of ``a - b`` over the folds both runs scored.

    Attributes:
        metric: Which per-fold metric.
        folds: Fold indices compared, in order; ``diffs`` the per-fold ``a - b``.
        statistic: The test statistic (None when no test was run).
        p_value: Two-sided p-value (None when no test was run).
        verdict: One sentence saying what the numbers allow one to say, or why there is no test.
    """

    metric: str
    folds: list[int]
    diffs: list[float]
    statistic: float | None
    p_value: float | None
    verdict: str


def paired_test(a: list[FoldScore], b: list[FoldScore], metric: str = "uf1") -> PairedTest:
    """Compare two runs fold by fold on the folds both have.

    Folds where the two runs score the same carry no sign; scipy's ``zero_method="wilcox"`` drops them and
    the verdict says how many were dropped. Too few folds, or all ties, give no test rather than a p-value
    that means nothing.
    """
    sa = {f.fold: f.scores[metric] for f in a}
    sb = {f.fold: f.scores[metric] for f in b}
    folds = sorted(set(sa) & set(sb))
    diffs = [round(sa[f] - sb[f], 12) for f in folds]
    nonzero = [d for d in diffs if d != 0.0]
    ties = len(diffs) - len(nonzero)
    tie_note = f" ({ties} tied fold{'s' if ties != 1 else ''} dropped)" if ties else ""
    if not folds:
        return PairedTest(metric, folds, diffs, None, None, "no fold in common: the runs cannot be paired")
    if not nonzero:
        return PairedTest(metric, folds, diffs, None, None, f"all {len(folds)} folds tie: no difference")
    if len(nonzero) < MIN_PAIRED_FOLDS:
        why = (
            f"only {len(nonzero)} fold{'s' if len(nonzero) != 1 else ''} differ{tie_note}; a signed-rank "
            f"test needs at least {MIN_PAIRED_FOLDS} to reach p < 0.05, so no test is reported"
        )
        return PairedTest(metric, folds, diffs, None, None, why)
    from scipy.stats import wilcoxon

    # scipy's own rule for "auto", made explicit so that the page can say which p-value it shows
    exact = len(nonzero) <= 50 and len({abs(d) for d in nonzero}) == len(nonzero)
    method = "exact" if exact else "asymptotic"
    res = wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided", method=method)
    stat, p = float(res.statistic), float(res.pvalue)
    if math.isnan(p):
        return PairedTest(metric, folds, diffs, None, None, "the test is undefined for these differences")
    wins = sum(d > 0 for d in nonzero)
    how = "exact" if exact else "normal approximation, tied ranks"
    lead = f"A higher on {wins} of {len(nonzero)} differing folds{tie_note}"
    verdict = f"{lead}; {'significant' if p < 0.05 else 'not significant'} at 0.05 (two-sided, {how})"
    return PairedTest(metric, folds, diffs, stat, p, verdict)


def predictions_file(run: RunRecord) -> Path | None:
    """The run's ``predictions.csv`` when it has one."""
    path = run.path / "predictions.csv"
    return path if path.is_file() else None
