"""``mer bench sweep`` and ``mer bench status``: argument parsing only; the work is in mer.sweep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mer.cli import _load, _progress, _table, bench_app, console, err, friendly_errors

_BACKEND_FLAGS = {
    "workers": "--workers",
    "address": "--address",
    "cpus": "--cpus-per-job",
    "gpus": "--gpus-per-job",
    "mem_gb": "--mem-gb",
    "time_min": "--time-min",
    "partition": "--partition",
    "account": "--account",
    "max_parallel": "--max-parallel",
}


@bench_app.command("sweep")
@friendly_errors
def bench_sweep(
    model: Annotated[list[str] | None, typer.Option(help="Model (repeatable).")] = None,
    protocol: Annotated[list[str] | None, typer.Option(help="Protocol (repeatable).")] = None,
    table: Annotated[
        str | None, typer.Option(help="A paper table (VIII, IX, X, XI): its rows' models (and protocols).")
    ] = None,
    size: Annotated[
        list[str] | None, typer.Option(help="Model size (repeatable; default each model's).")
    ] = None,
    seed: Annotated[list[int] | None, typer.Option(help="Run seed (repeatable; default 0).")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Model option KEY=VALUE; one KEY given twice is a sweep axis."),
    ] = None,
    prep: Annotated[
        list[str] | None,
        typer.Option(help="Preparation KEY=VALUE (frames, size, ...); one KEY given twice is an axis."),
    ] = None,
    folds: Annotated[str | None, typer.Option(help="Subset of folds of every run, e.g. 0,3-5.")] = None,
    select: Annotated[str, typer.Option(help="last (honest) | oracle (marked †)")] = "last",
    save_weights: Annotated[str, typer.Option(help="none | last | all")] = "none",
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go (seen by every worker).")] = Path(
        "runs"
    ),
    backend: Annotated[str, typer.Option(help="local | ray | slurm")] = "local",
    retries: Annotated[int, typer.Option(help="Times a failed fold job is tried again.")] = 0,
    tensorboard: Annotated[bool, typer.Option(help="Also write TensorBoard events per fold.")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="List runs and fold jobs and project GPU-hours; run nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print JSON.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="local: jobs at once (default: per GPU, else per core).")
    ] = None,
    address: Annotated[str | None, typer.Option(help="ray: 'auto' or HEAD:PORT.")] = None,
    cpus_per_job: Annotated[int | None, typer.Option(help="ray / slurm: CPUs per fold job.")] = None,
    gpus_per_job: Annotated[float | None, typer.Option(help="ray / slurm: GPUs per fold job.")] = None,
    mem_gb: Annotated[float | None, typer.Option(help="slurm: memory per job (GB).")] = None,
    time_min: Annotated[int | None, typer.Option(help="slurm: time limit per job (minutes).")] = None,
    partition: Annotated[str | None, typer.Option(help="slurm: partition.")] = None,
    account: Annotated[str | None, typer.Option(help="slurm: account.")] = None,
    max_parallel: Annotated[int | None, typer.Option(help="slurm: array tasks at once.")] = None,
    device: Annotated[
        str, typer.Option(help="--dry-run: device for the projection (h100, a100...).")
    ] = "h100",
    device_tflops: Annotated[
        float | None, typer.Option(help="--dry-run: a measured rate in TFLOP/s of model FLOPs instead.")
    ] = None,
    utilisation: Annotated[
        float | None, typer.Option(help="--dry-run: fraction of the datasheet peak (default 0.35, assumed).")
    ] = None,
    leaderboard: Annotated[
        Path | None, typer.Option(help="Leaderboard rebuilt at the end (default RUNS_DIR/LEADERBOARD.md).")
    ] = None,
    no_leaderboard: Annotated[bool, typer.Option(help="Do not rebuild the leaderboard.")] = False,
) -> None:
    """Run a grid of runs (models × sizes × protocols × seeds × options) or a paper table, fold by fold,
    on this machine, a Ray cluster or Slurm. Finished folds are skipped; failed ones are retried, then
    recorded; the exit code is 6 when any fold failed."""
    _load()
    from mer.errors import OptionValueError, RunFailedError
    from mer.sweep.backends import make_backend
    from mer.sweep.plan import Grid, expand, parse_axes, table_rows

    models, protocols = list(model or []), list(protocol or [])
    if table:
        t_models, t_protocols = table_rows(table)
        if models:
            raise OptionValueError("--table gives the models: do not also pass --model")
        models, protocols = t_models, protocols or t_protocols
    if not models or not protocols:
        raise OptionValueError("give --model and --protocol (repeatable), or --table")
    grid = Grid(
        models=tuple(models),
        protocols=tuple(protocols),
        sizes=tuple(size) if size else (None,),
        seeds=tuple(seed) if seed else (0,),
        options=parse_axes(option, "--option"),
        prep=parse_axes(prep, "--prep"),
        select=select,
        folds=folds,
        save_weights=save_weights,
    )
    configs = expand(grid)
    settings = {
        "workers": workers,
        "address": address,
        "cpus": cpus_per_job,
        "gpus": gpus_per_job,
        "mem_gb": mem_gb,
        "time_min": time_min,
        "partition": partition,
        "account": account,
        "max_parallel": max_parallel,
    }
    if backend == "slurm":  # submitit's pickles and the tasks' stdout / stderr
        settings["folder"] = runs_dir / ".slurm"
    engine = make_backend(backend, settings, _BACKEND_FLAGS)
    if dry_run:
        from mer.sweep.dryrun import dry_run_plan, render_dry_run

        plan = dry_run_plan(configs, runs_dir, device, device_tflops, utilisation)
        if as_json:
            console.print_json(json.dumps(plan))
        else:
            for line in render_dry_run(plan, engine):
                console.print(line, highlight=False, markup=False, soft_wrap=True)
        return
    from mer.sweep.driver import run_sweep

    out = None if no_leaderboard else (leaderboard or runs_dir / "LEADERBOARD.md")
    console.print(f"sweep: {len(configs)} run(s) on {engine.describe()}", highlight=False)

    tasks: dict[str, object] = {}

    def on_prepare(done: int, total: int) -> None:
        if "prepare" not in tasks:
            tasks["prepare"] = progress.add_task("prepare", total=total, info="")
        progress.update(tasks["prepare"], completed=done, total=total)

    def on_event(kind: str, job, outcome: dict) -> None:
        if kind == "planned":
            tasks["folds"] = progress.add_task("fold jobs", total=outcome["jobs"], info="")
        elif kind in ("done", "skipped", "failed"):
            progress.advance(tasks["folds"])
        if kind == "finalised":
            console.print(f"  finalised {Path(outcome['run_dir']).name}", highlight=False)
        elif kind == "done":
            console.print(f"  done      {job.label()}  {outcome.get('seconds', 0):.1f}s", highlight=False)
        elif kind in ("retry", "failed"):
            err.print(
                f"  {kind:9s} {job.label()} (attempt {job.attempt}): {outcome.get('error')}", highlight=False
            )

    with engine, _progress() as progress:
        result = run_sweep(
            configs,
            engine,
            runs_dir=runs_dir,
            retries=retries,
            tensorboard=tensorboard,
            leaderboard=out,
            on_event=on_event,
            on_prepare=on_prepare,
        )
    console.print(
        f"sweep: {len(result.runs)} run(s), {result.trained} fold(s) trained, {result.skipped} already done, "
        f"{result.retried} retried, {len(result.failed)} failed"
        + (f"; leaderboard {result.leaderboard}" if result.leaderboard else ""),
        highlight=False,
    )
    if result.failed:
        for f in result.failed:
            err.print(
                f"[red]failed:[/red] {f.run_id} fold {f.fold} after {f.attempts} attempt(s): {f.error} "
                f"(traceback: {f.traceback_file})",
                highlight=False,
                soft_wrap=True,
            )
        raise RunFailedError(f"{len(result.failed)} fold job(s) failed (listed above); the rest finished")


@bench_app.command("status")
@friendly_errors
def bench_status(
    runs: Annotated[list[Path], typer.Argument(help="Run directories, or folders holding runs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Finished / running / failed folds of runs, with elapsed time and an ETA."""
    from dataclasses import asdict

    from mer.sweep.status import find_runs, format_seconds, run_status

    states = [run_status(d) for d in find_runs(list(runs))]
    if as_json:
        console.print_json(json.dumps([asdict(s) | {"run_dir": str(s.run_dir)} for s in states]))
        return
    rows = [
        [
            s.run_dir.name,
            s.status,
            f"{s.count('done')}/{len(s.folds)}",
            str(s.count("running")),
            str(s.count("failed")),
            str(s.count("pending") + s.count("interrupted")),
            format_seconds(s.elapsed_s),
            format_seconds(s.eta_s),
        ]
        for s in states
    ]
    headers = ["run", "status", "done", "running", "failed", "pending", "elapsed", "ETA"]
    table = _table("runs", headers, rows)
    table.columns[0].overflow = "fold"  # run ids are long; cut, they would be ambiguous
    console.print(table)
    for s in states:
        for f in s.folds:
            if f.state in ("running", "interrupted"):
                ep = f" epoch {f.epoch}/{f.epochs}" if f.epoch else ""
                console.print(
                    f"  {s.run_dir.name} {_fold(f)}: {f.state} on {f.host} for "
                    f"{format_seconds(f.seconds)}{ep}, ETA {format_seconds(f.eta_s)}",
                    highlight=False,
                )
            elif f.state == "failed":
                console.print(f"  {s.run_dir.name} {_fold(f)}: failed: {f.error}", highlight=False)


def _fold(f) -> str:
    """``fold 3 (sub04)``; the name is known once the fold ran or failed."""
    return f"fold {f.index}" + ("" if f.name == f"fold {f.index}" else f" ({f.name})")
