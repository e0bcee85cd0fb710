"""One PNG per run: the confusion matrix with per-class F1 and recall (emotion runs), or per-AU F1 (AU runs).

Drawn with matplotlib's object API on an Agg canvas, so no global backend is switched; PNG metadata
that changes between machines (the matplotlib version) is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mer.leaderboard.collect import RunRecord

PNG_METADATA = {"Software": None}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _confusion(fig, run: RunRecord) -> None:
    m = run.metrics or {}
    classes = list(m.get("classes") or run.run.get("classes") or [])
    cm = np.asarray(m["confusion"], dtype=float)
    n = cm.shape[0]
    classes = classes if len(classes) == n else [str(i) for i in range(n)]
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9)  # fmt: skip
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion (counts; colour = row share)", fontsize=9)

    per_class = m.get("per_class") or {}
    f1 = [float((per_class.get(c) or {}).get("f1") or 0.0) for c in classes]
    rec = [float((per_class.get(c) or {}).get("recall") or 0.0) for c in classes]
    x = np.arange(n)
    bx.bar(x - 0.2, f1, width=0.4, label="F1")
    bx.bar(x + 0.2, rec, width=0.4, label="recall")
    bx.set_xticks(x, classes, rotation=45, ha="right")
    bx.set_ylim(0, 1)
    bx.legend(fontsize=8)
    bx.set_title(
        f"UF1 {m.get('uf1', 0):.4f}  UAR {m.get('uar', 0):.4f}  ACC {m.get('acc', 0):.4f}", fontsize=9
    )


def _per_au(fig, run: RunRecord) -> None:
    per_au = (run.metrics or {}).get("per_au") or {}
    aus = list(per_au)
    ax = fig.subplots()
    ax.bar(range(len(aus)), [float((per_au[a] or {}).get("f1") or 0.0) for a in aus])
    ax.set_xticks(range(len(aus)), aus, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title(f"per-AU F1 (mean {float((run.metrics or {}).get('mean_f1') or 0):.4f})", fontsize=9)


def can_plot(run: RunRecord) -> bool:
    """Whether the run's metrics hold what :func:`save_run_figure` draws."""
    m = run.metrics or {}
    return run.complete and (bool(m.get("confusion")) or bool(m.get("per_au")))


def save_run_figure(run: RunRecord, path: Path) -> Path:
    """Draw ``run``'s figure to ``path`` (PNG) and return the path."""
    fig = _figure(9, 4)
    if (run.metrics or {}).get("confusion"):
        _confusion(fig, run)
    else:
        _per_au(fig, run)
    fig.suptitle(f"{run.run_id}: {run.model} on {run.protocol}", fontsize=10)
    fig.tight_layout()
    from mer.protocols.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=PNG_METADATA)
    return path
