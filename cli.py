"""The ``mer`` command line. It parses arguments and calls the library; nothing else lives here."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import click
import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mer.errors import MissingInputError, OptionValueError

# Exceptions that are click's / typer's own way to end a command with a code (or a usage message).
_PASS_THROUGH = (
    click.exceptions.ClickException,
    click.exceptions.Exit,
    click.exceptions.Abort,
    typer.Exit,
    typer.Abort,
)


class _MerGroup(typer.core.TyperGroup):
    """The top-level group: every command's exception goes through :func:`_exit_for`."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except Exception as e:
            _exit_for(e)


_HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    cls=_MerGroup,
    help="Micro-expression recognition benchmarks and model zoo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=_HELP,
)
data_app = typer.Typer(help="Datasets: register, synthesise, prepare, inspect.", no_args_is_help=True)
bench_app = typer.Typer(help="Run protocols and merge runs.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
protocols_app = typer.Typer(help="Registered protocols.", no_args_is_help=True)
leaderboard_app = typer.Typer(help="Tables from run directories.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
app.add_typer(models_app, name="models")
app.add_typer(protocols_app, name="protocols")
app.add_typer(leaderboard_app, name="leaderboard")
zoo_app = typer.Typer(help="Model zoo: pull, push, inspect and convert weights.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")

console = Console()
err = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        import mer

        typer.echo(f"mer {mer.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Print full tracebacks (also: MER_DEBUG=1).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Micro-expression recognition benchmarks and model zoo."""
    import logging

    from mer.cli_errors import configure_logging, debug_from_env

    _state["debug"] = debug or debug_from_env()
    configure_logging(logging.WARNING if quiet else logging.INFO, err)


@app.command("env")
def env(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Versions of mer and its packages, CUDA, devices, memory and mer's folders (for bug reports)."""
    from mer.cli_output import emit_json
    from mer.envreport import environment_report, format_report

    report = environment_report()
    if as_json:
        emit_json(console, report)
    else:
        console.file.write(format_report(report) + "\n")


def _load() -> None:
    from mer.registrations import load_all

    load_all()


def _exit_for(e: Exception) -> None:
    """Report ``e`` (one line for a mer error, a bug report otherwise) and exit with its kind's code."""
    from mer.cli_errors import debug_from_env, report

    code = report(
        e,
        debug=_state["debug"] or debug_from_env(),
        say=lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True),
    )
    raise typer.Exit(int(code)) from None


def friendly_errors(fn):
    """Report an exception escaping ``fn`` as :func:`_exit_for` does (the top-level group does it too)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except Exception as e:
            _exit_for(e)

    return wrapper


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=title, title_justify="left")
    for h in headers:
        t.add_column(h)
    for r in rows:
        t.add_row(*r)
    return t


def _progress(disable: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
        transient=False,
        disable=disable,
    )


# ----------------------------------------------------------------------------------------- models


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """List every registered model with its sizes."""
    _load()
    from mer.cli_output import emit_table
    from mer.zoo.api import MODELS
    from mer.zoo.options import model_record

    records = [model_record(spec) for _, spec in MODELS.items()]
    emit_table(console, "models", ["name", "sizes", "family", "task", "description"], records, as_json)


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="Model name (`mer models list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """A model's sizes, preparation per size and its -o options (type, default, range, meaning)."""
    _load()
    from mer.cli_output import cell, emit_json, emit_table
    from mer.zoo.options import model_info

    info = model_info(name)
    if as_json:
        emit_json(console, info)
        return
    for key in ("name", "family", "task", "inputs", "sizes", "description"):
        console.print(f"{key:<12} {cell(info[key])}", highlight=False, markup=False, soft_wrap=True)
    for size, recipe in info["preparation"].items():
        prep = ", ".join(f"{k}={v}" for k, v in recipe.items()) or "(defaults)"
        console.print(f"{'prepare ' + size:<12} {prep}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"options ({len(info['options'])}; pass as -o KEY=VALUE)", highlight=False, markup=False)
    emit_table(console, "options", ["name", "type", "default", "range", "help"], info["options"])


@protocols_app.command("list")
def protocols_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """List every registered protocol."""
    _load()
    from mer.cli_output import emit_table
    from mer.protocols.protocol import PROTOCOLS

    records = [
        {
            "name": n,
            "dataset": p.dataset,
            "kind": p.kind,
            "task": p.task,
            "version": p.version,
            "classes": p.num_classes,
            "class names": list(p.classes),
            "description": p.description,
        }
        for n, p in PROTOCOLS.items()
    ]
    columns = ["name", "dataset", "kind", "classes", "class names", "description"]
    emit_table(console, "protocols", columns, records, as_json)


# ------------------------------------------------------------------------------------------- data


@data_app.command("list")
def data_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """Registered datasets: root recorded, found on disk, prepared caches."""
    _load()
    from mer.cli_output import emit_table
    from mer.protocols.config import mer_home, registered_datasets
    from mer.protocols.datasets import DATASETS

    entries = registered_datasets()
    rows = []
    for name, spec in DATASETS.items():
        entry = entries.get(name, {})
        root = entry.get("root", "")
        found = "yes" if root and Path(root).is_dir() else ("missing" if root else "-")
        prepared = mer_home() / "prepared" / name
        n = len(list(prepared.glob("*/meta.json"))) if prepared.is_dir() else 0
        rows.append(
            {
                "name": name,
                "title": spec.title,
                "root": root or None,
                "release": entry.get("release"),  # raw frames get a face crop (mer.protocols.release)
                "found": found,
                "prepared caches": n,
            }
        )
    columns = ["name", "title", "root", "release", "found", "prepared caches"]
    emit_table(console, "datasets", columns, rows, as_json)


@data_app.command("add")
@friendly_errors
def data_add(
    name: Annotated[str, typer.Argument(help="Dataset name (see `mer data list`).")],
    root: Annotated[Path, typer.Argument(help="Dataset root folder, as published.")],
    annotations: Annotated[
        Path | None, typer.Option(help="Annotation sheet (default: found under ROOT).")
    ] = None,
    release: Annotated[
        str | None, typer.Option(help="raw | cropped (default: recognised from the folders and frames).")
    ] = None,
    layout: Annotated[
        str | None, typer.Option(help="flow-images: ROOT holds one u, v, strain image per sample.")
    ] = None,
    pattern: Annotated[
        str | None, typer.Option(help="flow-images: file name, e.g. '{subject}_{filename}'.")
    ] = None,
    channels: Annotated[str | None, typer.Option(help="flow-images: what R,G,B hold (u,v,strain).")] = None,
    flow_offset: Annotated[str | None, typer.Option(help="flow-images: pixel of 0 (128,128,0).")] = None,
    flow_scale: Annotated[
        str | None, typer.Option(help="flow-images: pixels per unit (128,128,255).")
    ] = None,
) -> None:
    """Record where a dataset lies and which release it is (raw frames get a face crop); with --layout
    flow-images, a folder of motion images for the flow models."""
    _load()
    from mer.protocols.config import add_dataset
    from mer.protocols.datasets import DATASETS
    from mer.protocols.flow_images import add_flow_images, spec_from_options
    from mer.protocols.release import PREPARATION

    DATASETS.get(name)
    if not root.is_dir():
        raise MissingInputError(f"dataset root not found: {root}")
    if annotations is not None and not annotations.is_file():
        raise MissingInputError(f"annotation sheet not found: {annotations}")
    spec = spec_from_options(layout, pattern, channels, flow_offset, flow_scale)
    if spec is not None:
        if release is not None:
            raise OptionValueError("--release describes frames; a flow-images folder has none")
        entry, images = add_flow_images(name, root, annotations, spec)
        console.print(f"added {name}: {len(images.files)} flow images in {entry['root']}", highlight=False)
        if images.unmatched:
            console.print(
                f"  note: {images.unmatched} image(s) match no sample of the sheet", highlight=False
            )
        return
    entry = add_dataset(name, root, annotations, release)
    console.print(f"added {name}: {entry['root']}", highlight=False, soft_wrap=True)
    if "release" in entry:
        prep = ", ".join(f"{k}={v}" for k, v in PREPARATION[entry["release"]].items()) or "frames as they are"
        console.print(
            f"  release: {entry['release']} ({entry['release_evidence']}); preparation: {prep}",
            highlight=False,
            soft_wrap=True,
        )


@data_app.command("synth")
@friendly_errors
def data_synth(
    out: Annotated[Path, typer.Option(help="Folder to write SynthME into.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 16,
    clips_per_subject: Annotated[int, typer.Option(help="Clips per subject.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    width: Annotated[int, typer.Option(help="Frame width.")] = 128,
    height: Annotated[int, typer.Option(help="Frame height.")] = 128,
    register: Annotated[
        bool,
        typer.Option(
            "--register",
            help="Make it the `synthme` that loso-synth-3 and au-loso-synth use (runs on a non-default "
            "generation are named loso-synth-3@<data id>).",
        ),
    ] = False,
) -> None:
    """Write the SynthME synthetic benchmark (frame folders + coding sheet + generation parameters)."""
    _load()
    from mer.protocols.config import add_dataset
    from mer.protocols.synthme import write_synthme

    with _progress() as progress:
        task = progress.add_task("synth", total=subjects * clips_per_subject, info="")
        sheet = write_synthme(
            out,
            subjects=subjects,
            clips_per_subject=clips_per_subject,
            seed=seed,
            width=width,
            height=height,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"wrote {subjects * clips_per_subject} clips to {out} (sheet {sheet.name})")
    if register:
        add_dataset("synthme", out)
        console.print(f"registered {out} as dataset synthme")
    else:
        console.print(
            f"not registered: the benchmark's synthme is unchanged; `mer data add synthme {out}` "
            "(or --register) makes runs use it",
            highlight=False,
        )


@data_app.command("stats")
@friendly_errors
def data_stats(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    annotations: Annotated[Path, typer.Option(help="Annotation sheet (no images needed).")],
    protocol: Annotated[
        str | None, typer.Option(help="Count under this protocol's class map and folds.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the JSON form.")] = False,
) -> None:
    """Samples per class, subjects, folds and the validation report of a sheet."""
    _load()
    from mer.protocols.stats import stats_report

    typer.echo(stats_report(dataset, annotations, protocol, as_json=json_))


@data_app.command("prepare")
@friendly_errors
def data_prepare(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    root: Annotated[Path | None, typer.Option(help="Dataset root (default: as added).")] = None,
    annotations: Annotated[Path | None, typer.Option(help="Annotation sheet.")] = None,
    frames: Annotated[int, typer.Option(help="Frames kept per clip (T).")] = 16,
    size: Annotated[int, typer.Option(help="Square crop size.")] = 224,
    resize_short: Annotated[
        int | None, typer.Option(help="Short side before the crop (default: size).")
    ] = None,
    sampler: Annotated[str, typer.Option(help="keyframe | uniform")] = "keyframe",
    align: Annotated[
        str | None, typer.Option(help="none | detect | landmarks (default: the release's, see data add)")
    ] = None,
    on_align_failure: Annotated[str, typer.Option(help="full-frame | error")] = "full-frame",
    workers: Annotated[int, typer.Option(help="Threads.")] = 2,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild the cache even if one exists (repairs a damaged one).")
    ] = False,
) -> None:
    """Parse, validate, sample key frames, crop and cache a dataset (a no-op when cached)."""
    _load()
    from mer.protocols.prepare import Recipe, prepare
    from mer.protocols.runner import ensure_dataset_root

    given = root is not None
    if root is None:
        root = ensure_dataset_root(name)
    if align is None:  # raw frames get a face crop, cropped faces none (mer.protocols.release)
        from mer.protocols.release import detect_release, recorded_release

        release = detect_release(name, root) if given else recorded_release(name)[0]
        align = release.preparation().get("align", "none")
        console.print(
            f"{name}: {release.kind} release ({release.evidence}): --align {align}", highlight=False
        )
    recipe = Recipe(
        frames=frames,
        size=size,
        resize_short=resize_short,
        sampler=sampler,
        align=align,
        on_align_failure=on_align_failure,
    )
    with _progress() as progress:
        task = progress.add_task(f"prepare {name}", total=None, info="")

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = prepare(
            name, root, recipe, annotations=annotations, workers=workers, progress=tick, force=force
        )
    state = ("rebuilt" if force else "prepared") if result.created else "already prepared (no-op)"
    console.print(f"{name}: {len(result.samples)} clips {state} → {result.path}")
    al = result.alignment
    if al and al.get("asked") != "none":  # which aligner cropped how many clips, and why a fallback ran
        used = ", ".join(f"{k} {v}" for k, v in al.get("clips_per_aligner", {}).items())
        why = f"; {al['asked']} unavailable: {al['unavailable']}" if al.get("unavailable") else ""
        console.print(f"  face crop: asked {al['asked']}; clips per aligner: {used}{why}", highlight=False)
    for issue in result.issues[:20]:
        console.print(f"  [yellow]note[/yellow] {issue}", highlight=False)
    if len(result.issues) > 20:
        console.print(f"  … and {len(result.issues) - 20} more")


@data_app.command("verify")
@friendly_errors
def data_verify(
    dataset: Annotated[str | None, typer.Argument(help="Dataset name (default: every prepared one).")] = None,
) -> None:
    """Check every prepared cache (and its flow caches) against the checksums recorded when it was made."""
    _load()
    from mer.errors import ExitCode
    from mer.protocols.prepare import verify_caches

    report = verify_caches(dataset)
    for folder, problem in report:
        if problem is None:
            console.print(f"ok       {folder}", highlight=False)
        else:
            console.print(f"[red]DAMAGED[/red]  {problem}", highlight=False, soft_wrap=True)
    bad = sum(p is not None for _, p in report)
    console.print(f"{len(report)} cache(s) checked, {bad} damaged")
    if bad:
        raise typer.Exit(int(ExitCode.INTEGRITY))


# ------------------------------------------------------------------------------------------ bench


def _print_metrics(metrics: dict) -> None:
    if metrics is None:
        return
    if "uf1" in metrics:
        rows = [[k.upper(), f"{metrics[k]:.4f}"] for k in ("uf1", "uar", "acc", "wf1")]
        pf = metrics.get("per_fold", {})
        for k in ("uf1", "uar", "acc"):
            if k in pf:
                rows.append([f"{k.upper()} per fold", f"{pf[k]['mean']:.4f} ± {pf[k]['std']:.4f}"])
        rows.append(["folds", f"{metrics['folds_done']}/{metrics['n_folds']}"])
        console.print(_table("metrics (over concatenated predictions)", ["metric", "value"], rows))
        per = metrics.get("per_class", {})
        crow = [
            [
                c,
                "" if v["f1"] is None else f"{v['f1']:.4f}",
                "" if v["recall"] is None else f"{v['recall']:.4f}",
                str(v["support"]),
            ]
            for c, v in per.items()
        ]
        console.print(_table("per class", ["class", "F1", "recall", "support"], crow))
        parts = metrics.get("per_dataset") or {}
        if parts:  # a composite set (MEGC2019): each source dataset's figures
            prow = [[p, f"{v['uf1']:.4f}", f"{v['uar']:.4f}", str(v["n_samples"])] for p, v in parts.items()]
            console.print(_table("per source dataset", ["dataset", "UF1", "UAR", "samples"], prow))
    else:
        console.print_json(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}))


def _fold_callbacks(progress: Progress, label: str):
    fold_task = progress.add_task(label, total=None, info="")
    prep_task = None

    def on_prepare(done: int, total: int) -> None:
        nonlocal prep_task
        if prep_task is None:
            prep_task = progress.add_task("prepare", total=total, info="")
        progress.update(prep_task, completed=done, total=total)

    def on_fold(done: int, total: int, fold, seconds: float) -> None:
        progress.update(fold_task, completed=done, total=total, info=f"{fold.name} {seconds:.1f}s")

    return {"on_fold": on_fold, "on_prepare": on_prepare}


@bench_app.command("run")
@friendly_errors
def bench_run(
    model: Annotated[str, typer.Option(help="Model name (`mer models list`).")],
    protocol: Annotated[str, typer.Option(help="Protocol name (`mer protocols list`).")],
    size: Annotated[str | None, typer.Option(help="Model size (default: the model's).")] = None,
    folds: Annotated[str | None, typer.Option(help="Subset of folds, e.g. 0,3-5 (default all).")] = None,
    seed: Annotated[int, typer.Option(help="Run seed.")] = 0,
    select: Annotated[
        str, typer.Option(help="last (honest) | oracle (best epoch on the test fold, marked †)")
    ] = "last",
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
    run_id: Annotated[
        str | None, typer.Option(help="Run folder name (default derived from the config).")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Model option KEY=VALUE.")
    ] = None,
    save_weights: Annotated[str, typer.Option(help="none | last | all")] = "none",
    allow_dropped: Annotated[
        bool,
        typer.Option(
            "--allow-dropped",
            help="Run even when samples with an unknown emotion are dropped or a class is empty "
            "(recorded in run.json).",
        ),
    ] = False,
    init: Annotated[
        str | None,
        typer.Option(
            help="Deep models' starting weights: clip | random | run:RUN_ID | zoo name | hf-hub:org/name "
            "| local-dir:PATH | a checkpoint file (see mer.zoo.init)."
        ),
    ] = None,
    tensorboard: Annotated[
        bool, typer.Option(help="Also write TensorBoard events of each fold's epochs (deep models).")
    ] = False,
    parallel_folds: Annotated[
        int | None,
        typer.Option(
            help="Folds trained at once in separate processes (small models, one GPU). "
            "Default: one per CPU core for deep models on a CPU-only machine, else 1."
        ),
    ] = None,
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="Skip the prepared cache's checksum check at the start (recorded)."),
    ] = False,
    allow_mixed: Annotated[
        bool,
        typer.Option(
            "--allow-mixed",
            help="Resume a run whose finished folds came from another git commit or other options "
            "(recorded in run.json).",
        ),
    ] = False,
    align: Annotated[
        str | None, typer.Option(help="Face crop: none | detect | landmarks (default: the dataset's).")
    ] = None,
    sampler: Annotated[str | None, typer.Option(help="Frames: keyframe | uniform (TSN).")] = None,
    frames: Annotated[int | None, typer.Option(help="Frames kept per clip (T).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Square crop side.")] = None,
    resize_short: Annotated[int | None, typer.Option(help="Short side before the centre crop.")] = None,
    prep: Annotated[
        list[str] | None, typer.Option("--prep", help="Preparation KEY=VALUE (repeatable; see --dry-run).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the resolved configuration and stop (no data read).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print JSON.")] = False,
    flow: Annotated[
        str | None,
        typer.Option(
            help="Flow models' optical flow: tvl1 (default, the papers') | farneback | tvl1-skimage."
        ),
    ] = None,
) -> None:
    """Train and evaluate a model under a protocol; resumes an interrupted run.

    Under ``torchrun --nproc-per-node N -m mer bench run ...`` each fold trains data-parallel on N
    processes; only rank 0 writes and prints.
    """
    _load()
    from mer.protocols.plan import prep_overrides
    from mer.protocols.protocol import PROTOCOLS
    from mer.protocols.runner import RunConfig, run_bench
    from mer.zoo.api import MODELS

    MODELS.get(model), PROTOCOLS.get(protocol)  # fail on a typo before any work starts
    from mer.sweep.plan import parse_options

    options = parse_options(option)
    if init is not None:
        from mer.zoo.init import resolve_init

        options["init"] = resolve_init(init, model, runs_dir)
    config = RunConfig(
        model=model,
        protocol=protocol,
        size=size,
        seed=seed,
        folds=folds,
        select=select,
        options=options,
        save_weights=save_weights,
        allow_dropped=allow_dropped,
        recipe=prep_overrides(
            prep, align=align, sampler=sampler, frames=frames, size=image_size, resize_short=resize_short
        ),
        flow={} if flow is None else {"flow": flow},
    )
    if as_json and not dry_run:
        raise OptionValueError("--json goes with --dry-run (a run prints its metrics)")
    if dry_run:
        from mer.protocols.plan import format_plan, plan_run

        plan = plan_run(config, run_id)
        typer.echo(json.dumps(plan.to_dict(), indent=2) if as_json else format_plan(plan.to_dict()))
        return
    from mer.zoo.distributed import is_main

    with _progress(disable=not is_main()) as progress:
        result = run_bench(
            config,
            runs_dir=runs_dir,
            run_id=run_id,
            parallel_folds=parallel_folds,
            verify=not no_verify,
            allow_mixed=allow_mixed,
            tensorboard=tensorboard,
            **_fold_callbacks(progress, "folds"),
        )
    if result.metrics is None:  # a torchrun rank other than 0
        return
    console.print(f"run: {result.run_dir}  ({result.folds_done}/{result.n_folds} folds)")
    _print_metrics(result.metrics)


@bench_app.command("merge")
@friendly_errors
def bench_merge(
    runs: Annotated[list[Path], typer.Argument(help="Run directories made with disjoint --folds.")],
    out: Annotated[Path, typer.Option(help="Merged run directory to write.")],
    allow_mixed: Annotated[
        bool,
        typer.Option("--allow-mixed", help="Join runs of other git commits or options (recorded)."),
    ] = False,
) -> None:
    """Join runs made with disjoint --folds (e.g. on several machines) into one run."""
    _load()
    from mer.protocols.runner import merge_runs

    result = merge_runs(list(runs), out, allow_mixed=allow_mixed)
    console.print(f"merged {len(runs)} runs → {result.run_dir} ({result.folds_done}/{result.n_folds} folds)")
    _print_metrics(result.metrics)


# ------------------------------------------------------------------------------------ leaderboard


@leaderboard_app.command("show")
def leaderboard_show(
    runs_dir: Annotated[
        Path, typer.Option("--runs-dir", "--runs", help="Folder of run directories (--runs: old name).")
    ] = Path("runs"),
    details: Annotated[
        bool, typer.Option("--details", help="Also every field that shapes each number (run.json).")
    ] = False,
) -> None:
    """Print a table of the runs in a folder."""
    from mer.leaderboard.show import collect_rows, format_details, format_rows

    typer.echo(format_rows(collect_rows(runs_dir)))
    if details:
        typer.echo("\n" + format_details(runs_dir))


@leaderboard_app.command("build")
@friendly_errors
def leaderboard_build(
    runs_dir: Annotated[
        Path, typer.Option("--runs-dir", "--runs", help="Folder searched for runs (--runs: old name).")
    ] = Path("runs"),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output file, PNGs in figures/ beside it (default leaderboard/LEADERBOARD.md); "
            "with --format html the site's folder (default site/)."
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="md, csv, json, latex or html (a static web site).")
    ] = "md",
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 when OUT is stale.")] = False,
    protocol: Annotated[list[str] | None, typer.Option(help="Only this protocol (repeatable).")] = None,
) -> None:
    """Tables laid out like the papers' (reported rows beside measured runs), with confusion-matrix PNGs."""
    from mer.leaderboard.build import build_leaderboard, describe

    result = build_leaderboard(runs_dir, out, fmt=fmt, check=check, protocols=protocol or None)
    for line in describe(result):
        console.print(line, highlight=False, markup=False)
    if result.stale:
        raise typer.Exit(1)


@leaderboard_app.command("push")
@friendly_errors
def leaderboard_push(
    space: Annotated[str, typer.Option("--space", help="The Hugging Face Space to publish to (org/name).")],
    site: Annotated[Path, typer.Option(help="The site folder (mer leaderboard build --format html).")] = Path(
        "site"
    ),
    private: Annotated[bool, typer.Option(help="Create the Space private.")] = False,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
) -> None:
    """Publish the built site as a static Hugging Face Space (sdk: static)."""
    from mer.leaderboard.space import push_space

    result = push_space(site, space, private=private, message=message)
    console.print(
        f"pushed {result.files} files to {result.url} (commit {result.commit[:12]})", highlight=False
    )


# -------------------------------------------------------------------------------------------- zoo


@zoo_app.command("list")
@friendly_errors
def zoo_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: catalogue and cache.")] = False,
) -> None:
    """The catalogue of published models and what is in the local Hugging Face cache."""
    from mer.cli_output import emit_json, emit_table
    from mer.zoo.hub import cache_listing, hf_cache_dir, load_catalogue

    catalogue = [
        {
            "name": e.name,
            "kind": e.kind,
            "repo": e.repo_id,
            "revision": e.revision or "main",
            "protocol": e.protocol,
            "metrics": ", ".join(f"{k}={v:.3f}" for k, v in e.metrics.items()) or None,
            "published": "yes" if e.published else "not yet",
            "description": e.description,
        }
        for e in load_catalogue()
    ]
    cached = [
        {
            "repo": c.repo_id,
            "commit": c.commit,
            "refs": list(c.refs),
            "size": f"{c.size_bytes / 1e6:.1f} MB",
            "model": c.model or ("(not a mer artifact)" if not c.mer_artifact else None),
            "protocol": c.protocol,
        }
        for c in cache_listing()
    ]
    if as_json:
        emit_json(console, {"catalogue": catalogue, "cache_dir": str(hf_cache_dir()), "cached": cached})
        return
    columns = ["name", "kind", "repo", "revision", "protocol", "metrics", "published", "description"]
    emit_table(console, "catalogue", columns, catalogue, show_title=True)
    for c in cached:
        c["commit"] = c["commit"][:12]
    columns = ["repo", "commit", "refs", "size", "model", "protocol"]
    emit_table(console, f"local cache ({hf_cache_dir()})", columns, cached, show_title=True)


@zoo_app.command("pull")
@friendly_errors
def zoo_pull(
    name: Annotated[str, typer.Argument(help="Catalogue name, org/name or hf-hub:org/name[@revision].")],
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit.")] = None,
    force_download: Annotated[bool, typer.Option(help="Download again (repairs a corrupted cache).")] = False,
) -> None:
    """Fetch a model into the Hugging Face cache and verify it (offline: find it in the cache)."""
    from mer.zoo.hub import pull

    result = pull(name, revision=revision, force_download=force_download)
    how = "found in the cache (offline)" if result.offline else "pulled"
    console.print(f"{result.name}: {how} → {result.path}", highlight=False)
    if result.config is not None:
        console.print(
            f"  {result.config.model}-{result.config.size} on {result.config.protocol}, "
            f"weights sha256 {result.config.weights_sha256[:16]}… verified",
            highlight=False,
        )
    if result.conversion is not None:  # a third-party checkpoint, converted once to check it maps
        console.print(f"  sha256 {result.sha256}", highlight=False)
        console.print(result.conversion.summary(), highlight=False, markup=False)


@zoo_app.command("push")
@friendly_errors
def zoo_push(
    run: Annotated[str, typer.Argument(help="Run id (under --runs-dir) or run directory.")],
    repo: Annotated[str, typer.Option(help="Hub repository org/name (created if missing).")],
    private: Annotated[bool, typer.Option(help="Create the repository private.")] = False,
    fold: Annotated[int | None, typer.Option(help="Which fold's model (default: the last saved).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are.")] = Path("runs"),
    revision: Annotated[
        str | None, typer.Option(help="Branch to commit to (default main; created from main when missing).")
    ] = None,
) -> None:
    """Upload a run's artifact (config.json, model.safetensors, README.md) in one commit."""
    from mer.zoo.artifact import run_path
    from mer.zoo.hub import push

    result = push(
        run_path(run.removeprefix("run:"), runs_dir), repo, private=private, fold=fold, revision=revision
    )
    console.print(
        f"pushed {result.config.model}-{result.config.size} (fold {result.config.fold}) → "
        f"{result.url} @ {result.commit}",
        highlight=False,
    )


@zoo_app.command("export")
@friendly_errors
def zoo_export(
    run: Annotated[str, typer.Argument(help="Run id (under --runs-dir) or run directory.")],
    out: Annotated[Path, typer.Option(help="Artifact folder to write.")],
    fold: Annotated[int | None, typer.Option(help="Which fold's model (default: the last saved).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are.")] = Path("runs"),
) -> None:
    """Write a run's artifact folder locally (what `mer zoo push` would upload)."""
    from mer.zoo.artifact import export_run, run_path

    config = export_run(run_path(run.removeprefix("run:"), runs_dir), out, fold)
    console.print(f"wrote {out} ({config.model}-{config.size}, fold {config.fold})", highlight=False)


@zoo_app.command("info")
@friendly_errors
def zoo_info(
    name: Annotated[
        str, typer.Argument(help="Catalogue name, hf-hub:org/name, local-dir:PATH or run:RUN_ID.")
    ],
    runs_dir: Annotated[Path, typer.Option(help="Where run: looks.")] = Path("runs"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the only form: accepted for scripts).")
    ] = False,
) -> None:
    """Describe a model (JSON): catalogue entry, and its artifact config when it is local or cached."""
    from mer.cli_output import emit_json
    from mer.zoo.hub import describe

    emit_json(console, describe(name, runs_dir))


@zoo_app.command("convert")
@friendly_errors
def zoo_convert(
    src: Annotated[
        Path, typer.Argument(help="Checkpoint (.safetensors, or a tensors-only .pth/.pyth/.pt/.bin).")
    ],
    kind: Annotated[str, typer.Option(help="uniformerv2 | viclip-text | open_clip-text | open_clip-visual")],
    out: Annotated[Path, typer.Option(help="Converted .safetensors to write.")],
    size: Annotated[str, typer.Option(help="Target size checked against (base | tiny).")] = "base",
) -> None:
    """Convert an external checkpoint to mer's key names; reports missing / unexpected keys."""
    from mer.zoo.convert import convert_checkpoint, save_converted

    report = convert_checkpoint(src, kind, size)
    save_converted(report, out)
    console.print(report.summary(), highlight=False, markup=False)
    console.print(f"wrote {out}", highlight=False)


# ------------------------------------------------------------------------------------ predict / explain


@app.command("predict")
@friendly_errors
def predict(
    clips: Annotated[list[Path], typer.Argument(help="Videos, frame folders, or folders of them.")],
    model: Annotated[
        str, typer.Option(help="Zoo name, run:RUN_ID, hf-hub:org/name[@rev] or local-dir:PATH.")
    ],
    onset: Annotated[int | None, typer.Option(help="Onset frame (default: the first).")] = None,
    apex: Annotated[int | None, typer.Option(help="Apex frame (default: estimated).")] = None,
    offset: Annotated[int | None, typer.Option(help="Offset frame (default: the last).")] = None,
    align: Annotated[
        str | None, typer.Option(help="Face cropping override: none | detect | landmarks.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write a CSV, one row per clip.")] = None,
    top_aus: Annotated[int, typer.Option(help="AU phrases shown (CLIP-aligned models).")] = 3,
    runs_dir: Annotated[Path, typer.Option(help="Where run: looks.")] = Path("runs"),
) -> None:
    """Predict the emotion of your own clips; a folder of clips gives a CSV (stdout unless --out)."""
    _load()
    from mer.zoo.predict import expand_clips, predict_clips

    many = len(expand_clips(clips)) > 1
    with _progress(disable=not many) as progress:
        task = progress.add_task("predict", total=None, info="")
        report = predict_clips(
            clips,
            model,
            onset=onset,
            apex=apex,
            offset=offset,
            align=align,
            runs_dir=runs_dir,
            top_aus=top_aus,
            on_skip=lambda c, why: progress.console.print(
                f"[yellow]skipped[/yellow] {c}: {why}", highlight=False
            ),
            on_clip=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if out is not None:
        from mer.protocols.io import atomic_write_text

        atomic_write_text(out, report.table().to_csv(index=False))
        err.print(f"wrote {out}", highlight=False)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    elif out is None and many:
        print(report.table().to_csv(index=False), end="")
    elif out is None:
        for r in report.results:
            apex_note = " (estimated)" if r.apex_estimated else ""
            console.print(f"{r.clip}: {r.label}", highlight=False, markup=False)
            console.print(
                f"  frames {r.onset}..{r.offset}, apex {r.apex}{apex_note}; face crop: {r.face}",
                highlight=False,
                markup=False,
            )
            for c, p in sorted(r.probs.items(), key=lambda kv: -kv[1]):
                console.print(f"  {c:<12} {p:.3f}", highlight=False, markup=False)
            for n, phrase, s in r.aus:
                console.print(f"  AU{n:<3} {s:+.3f}  {phrase}", highlight=False, markup=False)
    if report.skipped:
        err.print(f"skipped {len(report.skipped)} clip(s): " + ", ".join(c for c, _ in report.skipped))
    for r in report.results:
        for w in r.warnings:
            err.print(f"[yellow]warning:[/yellow] {w}", highlight=False, soft_wrap=True)
    report.check_any()  # exit code 3 when no clip at all could be read


@app.command("explain")
@friendly_errors
def explain(
    runs: Annotated[list[str], typer.Argument(help="Run(s): run:RUN_ID or a run directory; side by side.")],
    sample: Annotated[str | None, typer.Option(help="Sample id: Grad-CAM of its apex frame.")] = None,
    tsne: Annotated[bool, typer.Option("--tsne", help="t-SNE of the run's test features.")] = False,
    out: Annotated[Path | None, typer.Option(help="PNG to write.")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run: looks.")] = Path("runs"),
) -> None:
    """Grad-CAM heat maps of a sample (several runs side by side) or a t-SNE of a run's test features."""
    _load()
    from mer.zoo.artifact import run_path
    from mer.zoo.explain import explain_sample, tsne_run

    if (sample is None) == (not tsne):
        raise OptionValueError("give exactly one of --sample ID or --tsne")
    dirs = [run_path(r.removeprefix("run:"), runs_dir) for r in runs]
    try:
        if tsne:
            if len(dirs) != 1:
                raise OptionValueError("--tsne takes one run")
            path, points = tsne_run(dirs[0], out or Path(f"{dirs[0].name}_tsne.png"))
            console.print(f"wrote {path} ({len(points)} test clips)", highlight=False, soft_wrap=True)
            return
        path, panels = explain_sample(dirs, sample, out or Path(f"{sample.replace('/', '_')}_gradcam.png"))
    except KeyError as e:
        raise OptionValueError(e.args[0]) from None
    for p in panels:
        console.print(f"{p.title} {p.note}".rstrip(), highlight=False, markup=False)
    console.print(f"wrote {path}", highlight=False)


# ------------------------------------------------------------------------------------------- demo


@app.command("demo")
@friendly_errors
def demo(
    runs_dir: Annotated[Path, typer.Option(help="Where the demo's runs go.")] = Path("runs/demo"),
    out: Annotated[Path, typer.Option(help="Leaderboard file to regenerate.")] = Path(
        "leaderboard/LEADERBOARD.md"
    ),
    site: Annotated[
        Path, typer.Option(help="Where the leaderboard web site of the demo's runs goes.")
    ] = Path("runs/demo-site"),
) -> None:
    """SynthME → prepare → chance, majority, lbptop-svm, ststnet and merclip (tiny) on loso-synth-3 →
    leaderboard (markdown, and a static web site to open in a browser)."""
    _load()
    from mer.demo import run_demo
    from mer.leaderboard.build import build_leaderboard, describe
    from mer.leaderboard.show import collect_rows, format_rows

    with _progress() as progress:
        run_demo(
            runs_dir,
            on_run=lambda m: progress.console.print(f"running {m} on loso-synth-3"),
            **_fold_callbacks(progress, "folds"),
        )
    typer.echo(format_rows(collect_rows(runs_dir)))
    for line in describe(build_leaderboard(runs_dir, out)):
        console.print(line, highlight=False, markup=False)
    for line in describe(build_leaderboard(runs_dir, site, fmt="html")):
        console.print(line, highlight=False, markup=False)


# `mer bench sweep` / `mer bench status` live in their own module; importing it registers them.
import mer.sweep.command  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
