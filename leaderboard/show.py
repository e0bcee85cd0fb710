"""``mer leaderboard show``: a quick table of the runs in a folder (the full builder is build.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunRow:
    """One finished (or partial) run, as a table row."""

    protocol: str
    model: str
    size: str
    select: str
    folds: str
    uf1: float | None
    uar: float | None
    acc: float | None
    run_id: str


def collect_rows(runs_dir: Path) -> list[RunRow]:
    """Every run under ``runs_dir`` with its headline metrics; partial runs get blank metrics."""
    rows = []
    for meta_path in sorted(Path(runs_dir).glob("*/run.json")):
        meta = json.loads(meta_path.read_text())
        metrics_path = meta_path.parent / "metrics.json"
        m = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        done = int(m.get("folds_done", len(meta.get("folds", {}))))
        total = int(meta.get("n_folds", 0))
        complete = m and done == total
        rows.append(
            RunRow(
                protocol=meta.get("protocol_label") or meta["protocol"],
                model=meta["model"],
                size=meta["size"],
                select=meta.get("select", "last"),
                folds=f"{done}/{total}",
                uf1=m.get("uf1") if complete else None,
                uar=m.get("uar") if complete else None,
                acc=m.get("acc") if complete else None,
                run_id=meta["run_id"],
            )
        )
    rows.sort(key=lambda r: (r.protocol, -(r.uf1 if r.uf1 is not None else -1), r.model))
    return rows


def format_rows(rows: list[RunRow]) -> str:
    """A markdown table; the oracle selection rule is marked †."""
    from tabulate import tabulate

    def num(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    table = [
        [
            r.protocol,
            r.model + (" †" if r.select == "oracle" else ""),
            r.size,
            num(r.uf1),
            num(r.uar),
            num(r.acc),
            r.folds,
            r.run_id,
        ]
        for r in rows
    ]
    headers = ["protocol", "model", "size", "UF1", "UAR", "ACC", "folds", "run"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def _kv(d: dict | None, keys: tuple[str, ...] | None = None) -> str:
    if not d:
        return "-"
    keys = keys or tuple(d)
    return " ".join(
        f"{k}={json.dumps(d[k]) if isinstance(d[k], (dict, list)) else d[k]}" for k in keys if k in d
    )


def run_details(meta: dict) -> list[str]:
    """Every recorded field of a run that shapes its number, one line per group (``--details``)."""
    training = dict(meta.get("training") or {})
    loss = training.pop("loss", None)
    init = meta.get("init") or {}
    al = meta.get("alignment") or {}
    release = meta.get("release") or {}
    sha = (init.get("sha256") or "")[:16]
    values = {k: v for k, v in training.items() if k not in ("prompts", "authors_config")}
    lines = [
        meta.get("run_id", "?"),
        f"  model        {meta.get('model')} (size {meta.get('size')}) on {meta.get('protocol')} "
        f"v{meta.get('protocol_version')}",
        f"  recipe       {meta.get('recipe_name', 'paper')}"
        + (f" ({training['authors_config']})" if training.get("authors_config") else ""),
        f"  release      {release.get('kind', '-')} ({release.get('evidence', 'not recorded')})",
        f"  preparation  {_kv(meta.get('recipe'))}",
        f"  alignment    asked {al.get('asked', '-')}; clips per aligner {_kv(al.get('clips_per_aligner'))}"
        + (f"; unavailable: {al['unavailable']}" if al.get("unavailable") else ""),
        f"  training     {_kv(values)}",
        f"  loss         {_kv(loss)}",
        f"  prompts      {_kv(training.get('prompts'))}",
        f"  init         {init.get('init', meta.get('options', {}).get('init', '-'))}"
        + (f" sha256 {sha}…" if sha else "")
        + (f" ({init['note']})" if init.get("note") else ""),
        f"  selection    {meta.get('selection', meta.get('select', 'last'))}",
        f"  seed         {meta.get('seed')}; options {_kv(meta.get('options'))}",
    ]
    lines += [f"  note         {n}" for n in meta.get("notes", [])]
    return lines


def format_details(runs_dir: Path) -> str:
    """The ``--details`` blocks of every run under ``runs_dir``, in table order."""
    order = {r.run_id: i for i, r in enumerate(collect_rows(runs_dir))}
    metas = [json.loads(p.read_text()) for p in Path(runs_dir).glob("*/run.json")]
    metas.sort(key=lambda m: order.get(m.get("run_id"), len(order)))
    return "\n\n".join("\n".join(run_details(m)) for m in metas)
