"""The benchmark runner: one model, one protocol, every fold, per-sample predictions on disk.

A run directory ``<runs>/<run_id>/`` holds ``run.json`` (configuration, environment, per-fold status),
``folds/fold_NNN.csv`` (each finished fold's predictions, written atomically when the fold ends),
``predictions.csv`` (all finished folds concatenated) and ``metrics.json`` (computed once over the
concatenated predictions, SPEC A.6). A run that stops (Ctrl-C, kill) resumes at the first unfinished
fold; every fold is seeded from the run seed and its index alone, so a resumed run ends with the same
numbers as an uninterrupted one.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import random
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mer.errors import MissingInputError, NonFiniteError, OptionValueError, UsageError
from mer.protocols.clipset import ClipSet
from mer.protocols.io import atomic_write_json, atomic_write_text, stable_hash
from mer.protocols.metrics import emotion_metrics, per_fold_summary
from mer.protocols.prepare import PreparedSet, Recipe, prepare
from mer.protocols.protocol import PROTOCOLS, Fold, Protocol, parse_folds
from mer.registry import Registry
from mer.zoo import distributed
from mer.zoo.api import MODELS, ModelSpec, Predictions


@dataclass(frozen=True)
class TaskHooks:
    """How the runner scores and tabulates one task's predictions.

    Attributes:
        metrics: (run's predictions DataFrame, protocol) → metrics dict.
        fold_frame: (fold, test clips, predictions, class names) → that fold's predictions table
            (single-label emotion writes y_true / y_pred / p_<class>; AU detection y_true_AU12, ...).
    """

    metrics: Callable[[pd.DataFrame, Protocol], dict[str, Any]]
    fold_frame: Callable[[Fold, ClipSet, Predictions, tuple[str, ...]], pd.DataFrame]


# Task name → its hooks; "emotion" is registered below, other tasks (AU detection) register themselves.
TASKS: Registry[TaskHooks] = Registry("task")


class RunConfigError(UsageError, ValueError):
    """An existing run directory was made with a different configuration."""


@dataclass
class RunConfig:
    """Everything that defines a run; two runs with equal configs give equal numbers.

    Attributes:
        model: Model registry name.
        protocol: Protocol registry name.
        size: Model size ("tiny", "base"); None = the model's default.
        seed: Run seed; fold k is seeded with ``seed * 1000 + k``.
        folds: ``--folds`` text ("0,3-5"), None = all.
        select: "last" (honest default) or "oracle" (best epoch on the test fold; marked †).
        recipe: Preparation overrides (frames, size, sampler, align...).
        options: Model options passed to its builder.
        save_weights: "none", "last" (the last fold's model) or "all".
    """

    model: str
    protocol: str
    size: str | None = None
    seed: int = 0
    folds: str | None = None
    select: str = "last"
    recipe: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    save_weights: str = "none"

    def run_id(self, size: str, prep: str | None = None) -> str:
        """Readable and deterministic, so that the same command finds and resumes its run.

        ``prep``: a hash of the resolved preparation when it differs from the model size's plain one
        (:func:`mer.protocols.plan.plan_run`).
        """
        parts = [self.protocol, f"{self.model}-{size}", f"seed{self.seed}"]
        if self.select != "last":
            parts.append(self.select)
        if self.options:
            # Options (--init, recipe switches) change the numbers: their hash keeps runs apart.
            parts.append("opt-" + stable_hash(self.options, 8))
        if prep:
            parts.append("prep-" + prep)
        if self.folds:
            parts.append("folds" + self.folds.replace(",", "_"))
        return "__".join(parts)


@dataclass
class RunResult:
    """What :func:`run_bench` returns."""

    run_dir: Path
    metrics: dict[str, Any] | None
    folds_done: int
    n_folds: int
    resumed_folds: int = 0


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def environment() -> dict[str, Any]:
    """Package, git, torch and device facts recorded in every run."""
    import subprocess

    import mer

    info: dict[str, Any] = {"mer_version": mer.__version__, "git_commit": None, "torch": None, "cuda": None}
    try:
        repo = Path(mer.__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            info["git_commit"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a dependency
        info["device"] = "cpu"
    return info


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def resolve_recipe(
    spec: ModelSpec, size: str, protocol: Protocol, overrides: dict[str, Any], options: dict | None = None
) -> Recipe:
    """Preparation recipe: defaults ← the dataset's release ← protocol extras ← the model's size ← the
    model's training recipe ← the user (:func:`mer.protocols.plan.plan_run` does the work)."""
    from mer.protocols.plan import plan_run

    config = RunConfig(spec.name, protocol.name, size=size, recipe=overrides, options=dict(options or {}))
    return plan_run(config).recipe


def ensure_dataset_root(dataset: str) -> Path | None:
    """The registered root of ``dataset``; SynthME is generated on first use."""
    from mer.protocols.config import add_dataset, dataset_entry, mer_home

    entry = dataset_entry(dataset)
    if entry:
        return Path(entry["root"])
    if dataset == "synthme":
        from mer.protocols.synthme import write_synthme

        root = mer_home() / "data" / "synthme"
        if not (root / "SynthME-coding.csv").exists():
            write_synthme(root)
        add_dataset("synthme", root)
        return root
    return None


def load_protocol_data(
    protocol: Protocol, recipe: Recipe, progress: Callable[[int, int], None] | None = None
) -> tuple[PreparedSet, ClipSet]:
    """Prepare (or open) the protocol's dataset and return its labelled clip set."""
    root = ensure_dataset_root(protocol.dataset)
    if root is None:
        raise MissingInputError(
            f"protocol {protocol.name} needs dataset {protocol.dataset!r}; "
            f"run `mer data add {protocol.dataset} ROOT` first"
        )
    prepared = prepare(protocol.dataset, root, recipe, progress=progress)
    return prepared, prepared.clipset(protocol)


def _fold_frame(fold: Fold, test: ClipSet, pred: Predictions, classes: tuple[str, ...]) -> pd.DataFrame:
    probs = np.asarray(pred.probs, dtype=np.float64)
    labels = np.asarray(pred.labels)
    if probs.shape != (len(test), len(classes)) or labels.shape[0] != len(test):
        raise ValueError(
            f"fold {fold.index}: model returned probs {probs.shape} / labels {labels.shape}, "
            f"expected ({len(test)}, {len(classes)})"
        )
    if not np.all(np.isfinite(probs)):
        raise NonFiniteError(f"fold {fold.index}: model returned non-finite probabilities")
    df = pd.DataFrame(
        {
            "sample": test.sample_ids,
            "subject": test.subjects,
            "fold": fold.index,
            "y_true": test.labels.astype(np.int64),
            "y_pred": labels.astype(np.int64),
        }
    )
    for i, c in enumerate(classes):
        df[f"p_{c}"] = probs[:, i].round(6)
    return df


def _save_weights(est: Any, path: Path) -> None:
    """Store an estimator's state with safetensors (arrays only; never a pickle)."""
    from safetensors.numpy import save_file

    state = est.state_dict()
    arrays = {}
    for k, v in state.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().float().numpy() if v.is_floating_point() else v.detach().cpu().numpy()
        # np.array keeps 0-d tensors 0-d (np.ascontiguousarray would make them shape (1,))
        arrays[k] = np.array(v, order="C", copy=True)
    tmp = path.with_suffix(".tmp")
    save_file(arrays, str(tmp))
    tmp.replace(path)


def _emotion_metrics(pred: pd.DataFrame, protocol: Protocol) -> dict[str, Any]:
    yt, yp, folds = (pred[c].to_numpy() for c in ("y_true", "y_pred", "fold"))
    m = emotion_metrics(yt, yp, protocol.classes)
    m["per_fold"] = per_fold_summary(yt, yp, folds, protocol.classes)
    return m


TASKS.register("emotion", TaskHooks(metrics=_emotion_metrics, fold_frame=_fold_frame))


def compute_metrics(pred: pd.DataFrame, protocol: Protocol, n_folds: int) -> dict[str, Any]:
    """Metrics over the concatenated predictions, plus per-fold mean ± std."""
    m = TASKS.get(protocol.task).metrics(pred, protocol)
    m["folds_done"] = int(pred["fold"].nunique())
    m["n_folds"] = n_folds
    return m


def config_difference(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` whose value differs between ``a`` and ``b`` (as JSON), or None.

    The one comparison behind a resume (:func:`_check_same`) and a merge (:func:`merge_runs`).
    """
    for key in keys:
        if json.dumps(a.get(key), sort_keys=True) != json.dumps(b.get(key), sort_keys=True):
            return key
    return None


def _check_same(existing: dict[str, Any], config: dict[str, Any], run_dir: Path) -> None:
    old = existing.get("config", {})
    key = config_difference(old, config, tuple(config))
    if key is not None:
        raise RunConfigError(
            f"{run_dir} was made with {key}={old.get(key)!r}, not {config[key]!r}; "
            "pass another --run-id or --runs-dir"
        )


def _fit_predict_fold(
    config: RunConfig,
    size: str,
    clips: ClipSet,
    fold: Fold,
    weights: Path | None,
    work_dir: Path | None = None,
) -> tuple[pd.DataFrame, int, int]:
    """Train and test one fold; returns its predictions table and the train / test sizes.

    ``work_dir`` is the fold's checkpoint folder, handed to deep models whose builder takes one, so
    that a killed run resumes mid-fold; it is removed once the fold has been predicted.
    """
    protocol = PROTOCOLS.get(config.protocol)
    spec = MODELS.get(config.model)
    i = fold.index
    seed_everything(config.seed * 1000 + i)
    options = dict(config.options)
    import inspect

    params = inspect.signature(spec.build).parameters
    if work_dir is not None and spec.family == "deep" and "work_dir" not in options and "work_dir" in params:
        options["work_dir"] = str(work_dir)
    if "protocol" in params:  # recipes that follow the dataset's config (official, SPEC A.5b)
        options["protocol"] = protocol.name
    est = spec.build(num_classes=protocol.num_classes, size=size, seed=config.seed * 1000 + i, **options)
    train, test = clips.subset(fold.train), clips.subset(fold.test)
    est.fit(train, test if config.select == "oracle" else None)
    pred = est.predict(test)
    frame = TASKS.get(protocol.task).fold_frame(fold, test, pred, protocol.classes)
    if weights is not None and distributed.is_main():
        weights.parent.mkdir(exist_ok=True)
        _save_weights(est, weights)
    if "work_dir" in options and "work_dir" not in config.options and distributed.is_main():
        import shutil

        shutil.rmtree(options["work_dir"], ignore_errors=True)  # the fold is done: resume is moot
    return frame, len(train), len(test)


_WORKER: dict[str, Any] = {}


def _worker_init(config: RunConfig, size: str, recipe: dict[str, Any], slots: Any, threads: int) -> None:
    """A parallel-fold worker: its own GPU share (round-robin over visible GPUs) and its own clips."""
    from mer.registrations import load_all

    load_all()
    with slots.get_lock():
        slot = slots.value
        slots.value += 1
    import torch

    torch.set_num_threads(threads)  # K workers on the CPU share its cores instead of fighting
    if torch.cuda.is_available():
        torch.cuda.set_device(slot % torch.cuda.device_count())
    protocol = PROTOCOLS.get(config.protocol)
    prepared, clips = load_protocol_data(protocol, Recipe(**recipe))
    if MODELS.get(config.model).inputs == "flow":
        from mer.protocols.flow import attach_flow

        clips = attach_flow(prepared, clips)
    _WORKER.update(config=config, size=size, clips=clips, folds=protocol.folds(clips.samples))


def _worker_fold(
    i: int, weights: Path | None, work_dir: Path | None = None
) -> tuple[int, pd.DataFrame, int, int, float]:
    start = time.perf_counter()
    frame, n_train, n_test = _fit_predict_fold(
        _WORKER["config"], _WORKER["size"], _WORKER["clips"], _WORKER["folds"][i], weights, work_dir
    )
    return i, frame, n_train, n_test, time.perf_counter() - start


def auto_parallel_folds(spec: ModelSpec, world_size: int = 1) -> int:
    """Default fold parallelism: a deep model of mer's catalogue on a CPU-only machine trains one fold
    per core with one thread each (a small network's many small ops keep several threads poorly busy;
    folds side by side keep every core busy: benchmarks/RESULTS.md); everything else runs one fold at a
    time: GPU, torchrun, classical models that finish in seconds, and models registered at run time
    (worker processes rebuild the registry from the catalogue, where such a model does not exist)."""
    import torch

    build = spec.build
    while isinstance(build, functools.partial):
        build = build.func
    in_catalogue = (getattr(build, "__module__", None) or "").startswith("mer.")
    if spec.family != "deep" or not in_catalogue or world_size > 1 or torch.cuda.is_available():
        return 1
    return available_cores()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def collect_folds(jobs: list[Future], record: Callable[..., None]) -> None:
    """Record parallel folds as they finish. On the first failure the folds not yet started are
    cancelled, those already training are still awaited and recorded (nothing finished is lost), and
    then the failure is raised."""
    from concurrent.futures import FIRST_COMPLETED, wait

    error: BaseException | None = None
    pending = set(jobs)
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for job in sorted(finished, key=jobs.index):
            exc = job.exception()
            if exc is None:
                record(*job.result())
            elif error is None:
                error = exc
        if error is not None:
            # cancel() succeeds only for folds still queued; the ones training are awaited
            pending = {job for job in pending if not job.cancel()}
    if error is not None:
        raise error


def check_run_id(run_id: str) -> None:
    """Refuse a run id that is not one plain folder name (``../x``, ``a/b``, ``/abs``, ``.``): a run
    folder always lies directly in the runs folder.

    Raises:
        OptionValueError: ``run_id`` would leave the runs folder or is empty.
    """
    text = str(run_id)
    if not text.strip() or text in (".", "..") or any(c in text for c in ("/", "\\", "\0")):
        raise OptionValueError(
            f"--run-id {run_id!r}: a run id is one folder name inside the runs folder "
            "(no '/', '\\', '..'); use --runs-dir to choose where runs go"
        )


def run_bench(
    config: RunConfig,
    runs_dir: Path = Path("runs"),
    run_id: str | None = None,
    on_fold: Callable[[int, int, Fold, float], None] | None = None,
    on_prepare: Callable[[int, int], None] | None = None,
    parallel_folds: int | None = None,
) -> RunResult:
    """Train and evaluate ``config.model`` on every (requested) fold of ``config.protocol``.

    Under ``torchrun`` every rank runs this: each fold trains data-parallel and only rank 0 writes.

    Args:
        config: The run's definition.
        runs_dir: Parent folder of run directories.
        run_id: Folder name (default :meth:`RunConfig.run_id`); an existing one is resumed.
        on_fold: Progress callback ``(done, total, fold, seconds)`` after each fold.
        on_prepare: Progress callback of the preparation ``(done, total)``.
        parallel_folds: Folds trained at once in separate processes (sharing one GPU, or spread over
            the visible GPUs), for models too small to fill a device. Each fold keeps its seed, so a
            parallel run gives the numbers of a one-at-a-time run (trained networks up to float
            rounding, since each worker runs cores / K threads). None: :func:`auto_parallel_folds`.

    Raises:
        RegistryError: unknown model or protocol (the message lists the valid names).
        RunConfigError: ``run_id`` exists with another configuration.
    """
    dinfo = distributed.init_from_env()
    if parallel_folds is None:
        parallel_folds = auto_parallel_folds(MODELS.get(config.model), dinfo.world_size)
    if parallel_folds > 1 and dinfo.world_size > 1:
        raise RunConfigError("--parallel-folds and torchrun do not combine: use one or the other")
    main = dinfo.is_main
    if run_id is not None:
        check_run_id(run_id)
    from mer.protocols.plan import plan_run

    plan = plan_run(config, run_id)  # everything but the data resolved, as --dry-run shows it
    protocol, spec, size, recipe = plan.protocol, MODELS.get(config.model), plan.size, plan.recipe
    prepared, clips = load_protocol_data(protocol, recipe, on_prepare)
    if spec.inputs == "flow":  # onset→apex flow + strain, cached beside the frames, computed once
        from mer.protocols.flow import attach_flow

        clips = attach_flow(prepared, clips)
    folds = protocol.folds(clips.samples)
    wanted = parse_folds(config.folds, len(folds))

    run_dir = Path(runs_dir) / plan.run_id
    (run_dir / "folds").mkdir(parents=True, exist_ok=True)
    cfg = {**asdict(config), "size": size, "recipe": asdict(recipe)}
    meta_path = run_dir / "run.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        _check_same(
            meta,
            {k: cfg[k] for k in ("model", "size", "protocol", "seed", "select", "recipe", "options")},
            run_dir,
        )
    else:
        meta = {
            "run_id": run_dir.name,
            "config": cfg,
            "model": spec.name,
            "size": size,
            "protocol": protocol.name,
            "protocol_version": protocol.version,
            "dataset": protocol.dataset,
            "task": protocol.task,
            "classes": list(protocol.classes),
            "recipe": asdict(recipe),
            # A model that resolves its own recipe (the flow CNNs' default is "mer") says which it used.
            "recipe_name": plan.model_plan.training.get("recipe") or config.options.get("recipe", "paper"),
            **plan.record(),
            "alignment": prepared.alignment,
            "seed": config.seed,
            "select": config.select,
            "options": config.options,
            "reconstruction": spec.reconstruction,
            "prepared": str(prepared.path),
            "n_folds": len(folds),
            "folds_requested": wanted,
            "folds": {},
            "created": _now(),
            "finished": None,
            "status": "running",
            **environment(),
        }
    meta["folds_requested"] = sorted(set(meta.get("folds_requested", [])) | set(wanted))

    def fold_file(i: int) -> Path:
        return run_dir / "folds" / f"fold_{i:03d}.csv"

    def weights_file(i: int) -> Path | None:
        if config.save_weights == "all" or (config.save_weights == "last" and i == wanted[-1]):
            return run_dir / "weights" / f"fold_{i:03d}.safetensors"
        return None

    def work_dir(i: int) -> Path:
        return run_dir / "work" / f"fold_{i:03d}"

    todo = [i for i in wanted if not fold_file(i).exists()]
    distributed.barrier()  # every rank has its to-do list before rank 0 writes anything
    resumed = len(wanted) - len(todo)
    done = resumed

    def record(i: int, frame: pd.DataFrame, n_train: int, n_test: int, seconds: float) -> None:
        nonlocal done
        if main:
            atomic_write_text(fold_file(i), frame.to_csv(index=False))
            meta["folds"][str(i)] = {
                "name": folds[i].name,
                "status": "done",
                "n_test": n_test,
                "n_train": n_train,
                "seconds": round(seconds, 3),
            }
            atomic_write_json(meta_path, meta)
        done += 1
        if on_fold:
            on_fold(done, len(wanted), folds[i], seconds)

    if parallel_folds > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        k = min(parallel_folds, len(todo))
        ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
        init = (config, size, asdict(recipe), ctx.Value("i", 0), max(1, available_cores() // k))
        with ProcessPoolExecutor(k, mp_context=ctx, initializer=_worker_init, initargs=init) as pool:
            jobs = [pool.submit(_worker_fold, i, weights_file(i), work_dir(i)) for i in todo]
            collect_folds(jobs, record)
    else:
        for i in todo:
            start = time.perf_counter()
            frame, n_train, n_test = _fit_predict_fold(
                config, size, clips, folds[i], weights_file(i), work_dir(i)
            )
            record(i, frame, n_train, n_test, time.perf_counter() - start)

    if not main:  # rank 0 writes predictions and metrics; the others are done
        return RunResult(run_dir, None, done, len(folds), resumed)
    for i in wanted:  # folds finished before a resume keep their record
        meta["folds"].setdefault(str(i), {"name": folds[i].name, "status": "done"})
    return finalize(run_dir, meta, protocol)


def finalize(run_dir: Path, meta: dict[str, Any], protocol: Protocol) -> RunResult:
    """Concatenate the finished folds, write predictions.csv and metrics.json, update run.json."""
    files = sorted((run_dir / "folds").glob("fold_*.csv"))
    pred = pd.concat(
        [pd.read_csv(f, dtype={"sample": str, "subject": str}) for f in files], ignore_index=True
    )
    pred = pred.sort_values(["fold", "sample"], kind="stable").reset_index(drop=True)
    atomic_write_text(run_dir / "predictions.csv", pred.to_csv(index=False))
    n_folds = int(meta["n_folds"])
    metrics = compute_metrics(pred, protocol, n_folds)
    atomic_write_json(run_dir / "metrics.json", metrics)
    meta["status"] = "complete" if metrics["folds_done"] == n_folds else "partial"
    meta["finished"] = _now()
    atomic_write_json(run_dir / "run.json", meta)
    return RunResult(run_dir, metrics, metrics["folds_done"], n_folds)


def merge_runs(run_dirs: list[Path], out_dir: Path) -> RunResult:
    """Join runs made with disjoint ``--folds`` (e.g. on several machines) into one run.

    Raises:
        RunConfigError: the runs differ in model, size, protocol, seed, selection, recipe or options,
            or two of them hold the same fold.
        OptionValueError: ``out_dir`` exists and is not empty (nothing is overwritten).
    """
    if not run_dirs:
        raise OptionValueError("merge needs at least one run directory")
    metas = []
    for d in run_dirs:
        p = Path(d) / "run.json"
        if not p.exists():
            raise MissingInputError(f"not a run directory (no run.json): {d}")
        metas.append(json.loads(p.read_text()))
    keys = (
        "model", "size", "protocol", "protocol_version", "seed", "select", "recipe", "options", "training"
    )  # fmt: skip
    first = metas[0]
    for d, m in zip(run_dirs[1:], metas[1:], strict=True):
        k = config_difference(m, first, keys)
        if k is not None:
            raise RunConfigError(f"cannot merge {d}: {k} is {m.get(k)!r}, not {first.get(k)!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        # a finished run there would lose its run.json, predictions and metrics
        raise OptionValueError(f"merge --out {out_dir}: it exists and is not empty; choose a new folder")
    owner: dict[str, Path] = {}
    for d in run_dirs:  # every check before the first byte is written
        for f in sorted((Path(d) / "folds").glob("fold_*.csv")):
            if f.name in owner:
                raise RunConfigError(f"fold {f.stem} is in both {owner[f.name]} and {d}")
            owner[f.name] = Path(d)
    (out_dir / "folds").mkdir(parents=True, exist_ok=True)
    folds_meta: dict[str, Any] = {}
    for d, m in zip(run_dirs, metas, strict=True):
        for f in sorted((Path(d) / "folds").glob("fold_*.csv")):
            atomic_write_text(out_dir / "folds" / f.name, f.read_text())
        folds_meta.update(m.get("folds", {}))
        for w in (
            sorted((Path(d) / "weights").glob("*.safetensors")) if (Path(d) / "weights").is_dir() else []
        ):
            (out_dir / "weights").mkdir(exist_ok=True)
            (out_dir / "weights" / w.name).write_bytes(w.read_bytes())
    meta = {
        **first,
        "run_id": out_dir.name,
        "folds": folds_meta,
        "folds_requested": sorted(int(k) for k in folds_meta),
        "merged_from": [str(d) for d in run_dirs],
    }
    return finalize(out_dir, meta, PROTOCOLS.get(first["protocol"]))
