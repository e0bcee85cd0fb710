"""``mer bench sweep --dry-run``: the runs, their fold jobs and the projected GPU-hours, without
preparing data or training (a dataset need not be registered: see :func:`mer.sweep.cost.fold_sizes`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mer.protocols.plan import plan_run
from mer.protocols.protocol import parse_folds
from mer.protocols.runner import RunConfig
from mer.sweep.backends import Backend, SlurmBackend
from mer.sweep.cost import describe_rate, fold_sizes, project
from mer.sweep.status import format_seconds


def dry_run_plan(
    configs: Sequence[RunConfig],
    runs_dir: Path,
    device: str | None = "h100",
    device_tflops: float | None = None,
    utilisation: float | None = None,
) -> dict[str, Any]:
    """Every run with its folds (total, finished, to run) and projected cost; JSON-ready."""
    rate, rate_note = describe_rate(device, device_tflops, utilisation)
    runs = []
    for c in configs:
        plan = plan_run(c)  # the run id, preparation and training bench run would use
        run_dir = Path(runs_dir) / plan.run_id
        sizes = fold_sizes(plan.protocol)
        row: dict[str, Any] = {"run_id": run_dir.name, "config": asdict(c), "size": plan.size}
        row["plan_notes"] = list(plan.notes)
        if sizes is None:
            row.update(n_folds=None, done=None, todo=None, gpu_hours=None)
            row["note"] = (
                f"dataset {plan.protocol.dataset} not registered and not in Table III: fold count unknown"
            )
            runs.append(row)
            continue
        wanted = parse_folds(c.folds, len(sizes.sizes))
        done = [i for i in wanted if (run_dir / "folds" / f"fold_{i:03d}.csv").exists()]
        todo = [i for i in wanted if i not in done]
        cost = project(c, todo, rate, plan.model_plan.training.get("epochs"))
        row.update(
            n_folds=len(wanted),
            done=len(done),
            todo=len(todo),
            todo_folds=todo,
            train_clip_steps=cost.train_clips,
            flops=cost.flops,
            gpu_hours=cost.gpu_hours,
            note=cost.note,
        )
        runs.append(row)
    projected = [r["gpu_hours"] for r in runs if r.get("gpu_hours") is not None]
    return {
        "runs": runs,
        "n_runs": len(runs),
        "fold_jobs": sum(r["todo"] or 0 for r in runs),
        "folds_done": sum(r["done"] or 0 for r in runs),
        "gpu_hours": sum(projected),
        "runs_not_projected": len(runs) - len(projected),
        "rate": rate,
        "rate_note": rate_note,
    }


def render_dry_run(plan: dict[str, Any], backend: Backend | None = None) -> list[str]:
    """Text lines of a dry-run plan (and, for Slurm, the sbatch script of its array)."""
    lines = []
    width = max((len(r["run_id"]) for r in plan["runs"]), default=10)
    lines.append(f"{'run':<{width}}  folds  done  to run  GPU-h")
    for r in plan["runs"]:
        gh = "-" if r.get("gpu_hours") is None else f"{r['gpu_hours']:.2f}"
        folds = "?" if r["n_folds"] is None else r["n_folds"]
        lines.append(
            f"{r['run_id']:<{width}}  {folds!s:>5}  {r['done'] if r['done'] is not None else '?'!s:>4}  "
            f"{r['todo'] if r['todo'] is not None else '?'!s:>6}  {gh:>5}"
        )
    notes = sorted({r["note"] for r in plan["runs"] if r.get("note")})
    notes += sorted({n for r in plan["runs"] for n in r.get("plan_notes", [])})
    lines.append(
        f"{plan['n_runs']} run(s), {plan['fold_jobs']} fold job(s) to run ({plan['folds_done']} finished "
        f"folds skipped); projected {plan['gpu_hours']:.2f} GPU-hours "
        f"(= {format_seconds(plan['gpu_hours'] * 3600)} on one GPU)"
        + (f"; {plan['runs_not_projected']} run(s) not projected" if plan["runs_not_projected"] else "")
    )
    lines.append(f"rate: {plan['rate_note']}")
    lines += [f"note: {n}" for n in notes]
    if backend is not None:
        lines.append(f"backend: {backend.describe()}")
        if isinstance(backend, SlurmBackend) and plan["fold_jobs"]:
            lines.append(f"sbatch script of the job array ({plan['fold_jobs']} tasks):")
            lines += backend.sbatch_text(plan["fold_jobs"]).splitlines()
    return lines
