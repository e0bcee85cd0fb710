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
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mer.errors import IntegrityError, MissingInputError, NonFiniteError, OptionValueError, UsageError
from mer.protocols.cache import publish_dir, remove_stale, workspace
from mer.protocols.clipset import ClipSet
from mer.protocols.fingerprint import DataMismatchError, data_fingerprint
from mer.protocols.flow import FlowConfig, FlowMethodError, flow_config, is_flow_setting, require_method
from mer.protocols.io import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    make_dirs,
    stable_hash,
)
from mer.protocols.metrics import emotion_metrics, per_fold_summary, per_part_metrics
from mer.protocols.prepare import PreparedSet, Recipe, prepare
from mer.protocols.protocol import PROTOCOLS, Fold, Protocol, parse_folds
from mer.protocols.selection import check_selection
from mer.registry import Registry
from mer.resources import available_cores
from mer.zoo import distributed
from mer.zoo.api import MODELS, ModelSpec, Predictions
from mer.zoo.watch import EpochLog, epoch_log


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


log = logging.getLogger("mer.runner")
_CURRENT_FOLD: list[str] = []  # the fold this process is training, named in the training loop's lines


class _FoldPrefix(logging.Filter):
    """Prefixes the training loop's per-epoch lines with the fold they belong to."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _CURRENT_FOLD and not getattr(record, "mer_fold", None):
            record.mer_fold = _CURRENT_FOLD[-1]
            record.msg = f"{_CURRENT_FOLD[-1]}: {record.msg}"
        return True


logging.getLogger("mer.train").addFilter(_FoldPrefix())

# Task name → its hooks; "emotion" is registered below, other tasks (AU detection) register themselves.
TASKS: Registry[TaskHooks] = Registry("task")


class RunConfigError(UsageError, ValueError):
    """An existing run directory (or a run to merge) was made with a different configuration."""


#: run.json fields that must be equal for two runs (or a run and its resumption) to be one run.
SAME_RUN_KEYS = (
    "model", "size", "protocol", "protocol_version", "seed", "select", "recipe", "training", "flow"
)  # fmt: skip
#: Fields that may differ only with ``--allow-mixed``, which records the mix in run.json.
MIXABLE_KEYS = ("options", "git_commit")


@dataclass(frozen=True)
class RunDifference:
    """One field in which two run records differ.

    Attributes:
        key: The run.json field.
        reference: Its value in the reference run (the existing run, the first run merged).
        other: Its value in the other run.
        kind: "config" (always refused), "data" (other data: always refused), "mixable" (refused
            unless ``--allow-mixed``).
    """

    key: str
    reference: Any
    other: Any
    kind: str

    def fingerprint_text(self) -> str:
        """What differs between two data fingerprints, e.g. ``n_samples 246 → 249``."""
        a, b = self.reference or {}, self.other or {}
        if not a or not b:
            return "no data fingerprint recorded (a run from an older mer)"
        keys = [k for k in ("data_name", "sheet_sha256", "n_samples", "class_counts", "synth", "layout")
                if a.get(k) != b.get(k)]  # fmt: skip
        return ", ".join(f"{k} {_short(a.get(k))} → {_short(b.get(k))}" for k in keys)


def _short(v: Any) -> str:
    return f"{v[:12]}…" if isinstance(v, str) and len(v) > 16 else json.dumps(v, sort_keys=True)


def run_differences(reference: dict[str, Any], other: dict[str, Any]) -> list[RunDifference]:
    """Every field in which two run records (run.json dicts) differ, in the order they are checked:
    configuration, data fingerprint, then the fields ``--allow-mixed`` accepts.

    The one comparison used when a run is resumed and when runs are merged.
    """

    def same(a: Any, b: Any) -> bool:
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)

    out = [RunDifference(k, reference.get(k), other.get(k), "config") for k in SAME_RUN_KEYS
           if not same(reference.get(k), other.get(k))]  # fmt: skip
    fa, fb = reference.get("data_fingerprint"), other.get("data_fingerprint")
    if not fa or not fb:  # a run from before fingerprints: only --allow-mixed may join it
        if fa != fb:
            out.append(RunDifference("data_fingerprint", fa, fb, "mixable"))
    elif fa.get("id") != fb.get("id"):
        out.append(RunDifference("data_fingerprint", fa, fb, "data"))
    out += [RunDifference(k, reference.get(k), other.get(k), "mixable") for k in MIXABLE_KEYS
            if not same(reference.get(k), other.get(k))]  # fmt: skip
    return out


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
        allow_dropped: Run even when the protocol drops samples with an unknown emotion or leaves a
            class empty (:mod:`mer.protocols.selection`); recorded in run.json.
        flow: Optical-flow settings of flow models (``{"flow": "farneback"}``, parameters by name; see
            :func:`mer.protocols.flow.flow_config`); empty = TV-L1 with its defaults. Keys ``flow`` and
            ``flow.*`` given among the preparation overrides (``--prep flow=farneback``) move here.
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
    allow_dropped: bool = False
    flow: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        moved = {k: v for k, v in self.recipe.items() if is_flow_setting(k)}
        if moved:
            self.recipe = {k: v for k, v in self.recipe.items() if k not in moved}
            self.flow = {**moved, **self.flow}

    def flow_config(self) -> FlowConfig:
        """The resolved optical-flow settings (TV-L1 with its defaults unless asked otherwise)."""
        return flow_config(self.flow)

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
        if self.flow and self.flow_config().tag():
            parts.append(self.flow_config().tag())  # another flow is another input: a run of its own
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
    protocol: Protocol,
    recipe: Recipe,
    progress: Callable[[int, int], None] | None = None,
    verify: str = "size",
) -> tuple[PreparedSet, ClipSet]:
    """Prepare (or open) the protocol's dataset and return its labelled clip set.

    ``verify`` says what opening an existing cache checks: "size" (sizes and shapes) or "sha256"."""

    root = ensure_dataset_root(protocol.dataset)
    if root is None:
        raise MissingInputError(
            f"protocol {protocol.name} needs dataset {protocol.dataset!r}; "
            f"run `mer data add {protocol.dataset} ROOT` first"
        )
    prepared = prepare(protocol.dataset, root, recipe, progress=progress, verify=verify)
    return prepared, prepared.clipset(protocol)


def check_flow_request(config: RunConfig, spec: ModelSpec) -> FlowConfig | None:
    """The flow a run of ``spec`` computes (None for a model without flow input), checked before any work.

    Raises:
        FlowMethodError: flow settings given to a model that reads no flow.
        FlowUnavailableError: the method cannot run here (TV-L1 without OpenCV's contrib module).
    """
    if spec.inputs != "flow":
        if config.flow:
            raise FlowMethodError(
                f"model {spec.name} does not read optical flow: --flow / --prep flow=... apply to "
                "flow models (off-apexnet, ststnet, htnet) only"
            )
        return None
    from mer.protocols.flow_images import registered_spec

    flow = config.flow_config()
    if registered_spec(PROTOCOLS.get(config.protocol).dataset) is None:
        require_method(flow.method)  # a missing method is an error, never a swap
    return flow


@dataclass
class RunInputs:
    """What a run's models read.

    Attributes:
        source: Where the inputs live (the prepared cache, or the flow-image folder).
        clips: The protocol's clips (the flow attached for flow models).
        flow: The record of the flow (method and parameters, or the flow images), None without flow.
        alignment: How the face crop was made (empty for flow images).
        samples: Every prepared sample, the protocol's or not (to tell what its class map drops).
        data: What identifies the data (sheet SHA-256, layout, root) for the run's data fingerprint.
        verified: What opening the inputs checked ("size", "sha256", "built"; "none" for flow images).
    """

    source: Path
    clips: ClipSet
    flow: dict[str, Any] | None = None
    alignment: dict[str, Any] = field(default_factory=dict)
    samples: list[Any] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    verified: str = "size"


def load_run_inputs(
    protocol: Protocol,
    spec: ModelSpec,
    recipe: Recipe,
    flow: FlowConfig | None,
    progress: Callable[[int, int], None] | None = None,
    verify: str = "size",
) -> RunInputs:
    """The prepared clips (with the onset → apex flow attached for flow models), or, for a dataset
    added as flow images, those images.

    Raises:
        FlowMethodError: a flow-image dataset with a model that needs frames, or with flow settings
            (the images are the flow).
    """
    from mer.protocols.flow_images import flow_image_clips

    loaded = flow_image_clips(protocol, progress)
    if loaded is not None:
        images, clips = loaded
        if flow is None:
            raise FlowMethodError(
                f"dataset {protocol.dataset} was added as flow images ({images.folder}): model {spec.name} "
                "needs frames; only the flow models (off-apexnet, ststnet, htnet) run on it"
            )
        if flow != flow_config({}):
            raise FlowMethodError(
                f"dataset {protocol.dataset} was added as flow images: their flow is used as it is, "
                f"so a flow setting ({flow.tag()}) has nothing to change"
            )
        data = _flow_image_data(protocol)
        return RunInputs(images.folder, clips, images.record(), data=data, verified="none")
    prepared, clips = load_protocol_data(protocol, recipe, progress, verify)
    known = {"data": prepared.meta, "verified": prepared.verified}
    if flow is None:
        return RunInputs(prepared.path, clips, None, prepared.alignment, prepared.samples, **known)
    from mer.protocols.flow import attach_flow

    # onset→apex flow + strain, cached beside the frames, computed once
    flowed = attach_flow(prepared, clips, flow)
    return RunInputs(prepared.path, flowed, flow.to_json(), prepared.alignment, prepared.samples, **known)


def _flow_image_data(protocol: Protocol) -> dict[str, Any]:
    """The data-identity fields of a dataset added as flow images (its sheet, its folder)."""
    from mer.protocols.config import dataset_entry
    from mer.protocols.io import file_sha256

    entry = dataset_entry(protocol.dataset) or {}
    sheet = entry.get("annotations")
    sha = file_sha256(Path(sheet)) if sheet and Path(sheet).is_file() else ""
    return {"sheet_sha256": sha, "layout": "flow-images", "root": entry.get("root", "")}


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
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp))


def _emotion_metrics(pred: pd.DataFrame, protocol: Protocol) -> dict[str, Any]:
    yt, yp, folds = (pred[c].to_numpy() for c in ("y_true", "y_pred", "fold"))
    m = emotion_metrics(yt, yp, protocol.classes)
    m["per_fold"] = per_fold_summary(yt, yp, folds, protocol.classes)
    if protocol.part_of is not None:  # a composite set: each source dataset's figures as well
        parts = np.asarray([protocol.part_of(str(s)) for s in pred["subject"]])
        m["per_dataset"] = per_part_metrics(yt, yp, parts, protocol.classes, protocol.parts)
    return m


TASKS.register("emotion", TaskHooks(metrics=_emotion_metrics, fold_frame=_fold_frame))


def compute_metrics(pred: pd.DataFrame, protocol: Protocol, n_folds: int) -> dict[str, Any]:
    """Metrics over the concatenated predictions, plus per-fold mean ± std."""
    m = TASKS.get(protocol.task).metrics(pred, protocol)
    m["folds_done"] = int(pred["fold"].nunique())
    m["n_folds"] = n_folds
    return m


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """A run's ``run.json``.

    Raises:
        IntegrityError: the file is not valid JSON (truncated, overwritten).
    """
    path = Path(run_dir) / "run.json"
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("top level is not an object")
        return meta
    except ValueError as e:
        raise IntegrityError(
            f"{path} is damaged ({e}); the finished folds under {Path(run_dir) / 'folds'} are kept: "
            "move the run folder aside and run again, or restore run.json"
        ) from None


def fold_record(path: Path) -> dict[str, Any]:
    """What run.json records of a finished fold's CSV: its SHA-256 and row count."""
    data = Path(path).read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "rows": max(0, data.count(b"\n") - 1)}


def check_fold_file(path: Path, record: dict[str, Any] | None) -> None:
    """Compare a fold CSV with its run.json record (nothing to compare for runs of an older mer).

    Raises:
        IntegrityError: the file's bytes differ from the recorded SHA-256 (truncated, overwritten).
    """
    if not record or "sha256" not in record:
        return
    if fold_record(path)["sha256"] != record["sha256"]:
        raise IntegrityError(
            f"{path} does not match the SHA-256 recorded in run.json (truncated or overwritten)"
        )


def _check_resumable(
    existing: dict[str, Any], fresh: dict[str, Any], run_dir: Path, allow_mixed: bool
) -> dict[str, Any]:
    """Refuse to resume ``run_dir`` when its record differs from this command's; return what
    ``allow_mixed`` let differ (empty when nothing did)."""
    mixed: dict[str, Any] = {}
    for d in run_differences(existing, fresh):
        if d.kind == "config":
            raise RunConfigError(
                f"{run_dir} was made with {d.key}={d.reference!r}, not {d.other!r}; "
                "pass another --run-id or --runs-dir"
            )
        if d.kind == "data":
            raise DataMismatchError(
                f"{run_dir}: its finished folds were made on other data ({d.fingerprint_text()}); "
                "a run never mixes data: pass another --run-id or --runs-dir"
            )
        if not allow_mixed:
            what = (
                d.fingerprint_text() if d.key == "data_fingerprint" else f"{d.reference!r}, now {d.other!r}"
            )
            raise RunConfigError(
                f"{run_dir}: its finished folds were made with another {d.key} ({what}); "
                "pass --allow-mixed to resume anyway (recorded in run.json), or another --run-id"
            )
        mixed[d.key] = {"before": d.reference, "now": d.other}
    return mixed


def _fit_predict_fold(
    config: RunConfig,
    size: str,
    clips: ClipSet,
    fold: Fold,
    weights: Path | None,
    work_dir: Path | None = None,
    watch: EpochLog | None = None,
) -> tuple[pd.DataFrame, int, int]:
    """Train and test one fold; returns its predictions table and the train / test sizes.

    ``work_dir`` is the fold's checkpoint folder, handed to deep models whose builder takes one, so
    that a killed run resumes mid-fold; it is removed once the fold has been predicted. ``watch`` says
    where deep models log their epochs (train loss, LR, loss weights).
    """
    protocol = PROTOCOLS.get(config.protocol)
    spec = MODELS.get(config.model)
    i = fold.index
    _CURRENT_FOLD[:] = [f"fold {i} ({fold.name})"]
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
    with epoch_log(watch):
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


def _worker_init(
    config: RunConfig, size: str, recipe: dict[str, Any], slots: Any, threads: int, log_level: int = 0
) -> None:
    """A parallel-fold worker: its own GPU share (round-robin over visible GPUs) and its own clips.

    ``log_level``: the parent's level for mer's loggers, so that the per-epoch lines show from here too.
    """
    from mer.registrations import load_all

    if log_level:
        from mer.cli_errors import configure_logging

        configure_logging(log_level)

    load_all()
    with slots.get_lock():
        slot = slots.value
        slots.value += 1
    import torch

    torch.set_num_threads(threads)  # K workers on the CPU share its cores instead of fighting
    if torch.cuda.is_available():
        torch.cuda.set_device(slot % torch.cuda.device_count())
    protocol = PROTOCOLS.get(config.protocol)
    spec = MODELS.get(config.model)
    flow = config.flow_config() if spec.inputs == "flow" else None
    clips = load_run_inputs(protocol, spec, Recipe(**recipe), flow).clips
    _WORKER.update(config=config, size=size, clips=clips, folds=protocol.folds(clips.samples))


def _worker_fold(
    i: int, weights: Path | None, work_dir: Path | None = None, watch: EpochLog | None = None
) -> tuple[int, pd.DataFrame, int, int, float]:
    start = time.perf_counter()
    frame, n_train, n_test = _fit_predict_fold(
        _WORKER["config"], _WORKER["size"], _WORKER["clips"], _WORKER["folds"][i], weights, work_dir, watch
    )
    return i, frame, n_train, n_test, time.perf_counter() - start


def auto_parallel_folds(spec: ModelSpec, world_size: int = 1) -> int:
    """Default fold parallelism: a deep model of mer's catalogue on a CPU-only machine trains one fold
    per core with one thread each (a small network's many small ops keep several threads poorly busy;
    folds side by side keep every core busy: benchmarks/RESULTS.md); everything else runs one fold at a
    time: GPU, torchrun, classical models that finish in seconds, and models registered at run time
    (worker processes rebuild the registry from the catalogue, where such a model does not exist).

    The run then bounds the per-core count by memory
    (:func:`mer.protocols.parallel.choose_parallel_folds`)."""
    import torch

    build = spec.build
    while isinstance(build, functools.partial):
        build = build.func
    in_catalogue = (getattr(build, "__module__", None) or "").startswith("mer.")
    if spec.family != "deep" or not in_catalogue or world_size > 1 or torch.cuda.is_available():
        return 1
    return available_cores()


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


@dataclass
class OpenRun:
    """A run resolved, its data loaded and its record read or started (what :func:`open_run` returns).

    Nothing is written by opening a run except its ``folds/`` folder: ``run.json`` is written by whoever
    records folds (:func:`run_bench`, or the driver of ``mer bench sweep``), so that fold jobs running at
    once on several machines never race on it.
    """

    config: RunConfig
    size: str
    protocol: Protocol
    recipe: Recipe
    clips: ClipSet
    folds: list[Fold]
    wanted: list[int]
    run_dir: Path
    meta: dict[str, Any]

    def fold_file(self, i: int) -> Path:
        return self.run_dir / "folds" / f"fold_{i:03d}.csv"

    def weights_file(self, i: int) -> Path | None:
        sw = self.config.save_weights
        if sw == "all" or (sw == "last" and i == self.wanted[-1]):
            return self.run_dir / "weights" / f"fold_{i:03d}.safetensors"
        return None

    def work_dir(self, i: int) -> Path:
        return self.run_dir / "work" / f"fold_{i:03d}"

    def watch(self, i: int, tensorboard: bool = False) -> EpochLog:
        """Where fold ``i`` logs its epochs (``folds/fold_NNN.epochs.jsonl``, TensorBoard events)."""
        tb = self.run_dir / "tensorboard" / f"fold_{i:03d}" if tensorboard else None
        return EpochLog(self.run_dir / "folds" / f"fold_{i:03d}.epochs.jsonl", tb)

    def fold_record(self, i: int) -> dict[str, Any] | None:
        """Fold ``i``'s record: its ``fold_NNN.json``, else its entry in run.json (None when neither)."""
        side = self.fold_file(i).with_suffix(".json")
        try:
            return json.loads(side.read_text()) if side.exists() else self.meta["folds"].get(str(i))
        except ValueError:
            return None  # a damaged record: the fold CSV is checked against run.json's, if any

    def todo(self) -> list[int]:
        """Requested folds without a finished predictions file, and those whose file no longer matches
        its recorded SHA-256 (redone, and said so)."""
        todo = []
        for i in self.wanted:
            if not self.fold_file(i).exists():
                todo.append(i)
                continue
            try:
                check_fold_file(self.fold_file(i), self.fold_record(i))
            except IntegrityError as e:
                log.warning("%s; fold %d is run again", e, i)
                self.meta.setdefault("notices", []).append(
                    f"{_now()}: {self.fold_file(i).name} damaged; redone"
                )
                todo.append(i)
        return todo


def open_run(
    config: RunConfig,
    runs_dir: Path = Path("runs"),
    run_id: str | None = None,
    on_prepare: Callable[[int, int], None] | None = None,
    verify: bool = True,
    allow_mixed: bool = False,
) -> OpenRun:
    """Resolve ``config`` (model, size, protocol, recipe), prepare its data and read or start its record.

    Args:
        verify: Check the prepared cache's checksums once (sizes and shapes are checked on every load);
            False (``--no-verify``) is recorded in run.json.
        allow_mixed: Resume a run whose finished folds came from another git commit or other options
            (``--allow-mixed``); the mix is recorded in run.json.

    Raises:
        RegistryError: unknown model or protocol (the message lists the valid names).
        RunConfigError: ``run_id`` exists with another configuration (or another commit / other
            options without ``allow_mixed``).
        DataMismatchError: ``run_id`` exists and its folds were made on other data.
        CacheError: the prepared cache is damaged (the message names the rebuilding command).
    """
    if run_id is not None:
        check_run_id(run_id)
    from mer.protocols.plan import plan_run

    plan = plan_run(config, run_id)  # everything but the data resolved, as --dry-run shows it
    protocol, spec, size, recipe = plan.protocol, MODELS.get(config.model), plan.size, plan.recipe
    flow = check_flow_request(config, spec)
    t0 = time.perf_counter()
    inputs = load_run_inputs(protocol, spec, recipe, flow, on_prepare, "sha256" if verify else "size")
    check = {"level": inputs.verified, "seconds": round(time.perf_counter() - t0, 3)}
    if not verify:
        check["skipped_by"] = "--no-verify"
    clips, flow_record = inputs.clips, inputs.flow
    fingerprint = data_fingerprint(inputs.data, protocol, clips)
    selection = check_selection(protocol, inputs.samples or clips.samples, config.allow_dropped)
    if not selection.clean:  # only reached with --allow-dropped: said on screen, recorded below
        log.warning("--allow-dropped: %s", selection.describe())
    folds = protocol.folds(clips.samples)
    wanted = parse_folds(config.folds, len(folds))

    label = fingerprint["protocol_label"]
    if run_id is None and label != protocol.name:  # non-default data: the run is named after it
        run_dir = Path(runs_dir) / (label + plan.run_id.removeprefix(protocol.name))
    else:
        run_dir = Path(runs_dir) / plan.run_id
    # recipe.key(): the fields that define the cache (a new field at its default leaves out, so a run
    # made before it existed still resumes and merges)
    cfg = {**asdict(config), "size": size, "recipe": recipe.key(), "flow": flow_record}
    meta_path = run_dir / "run.json"
    fresh = {
        "run_id": run_dir.name,
        "config": cfg,
        "model": spec.name,
        "size": size,
        "protocol": protocol.name,
        "protocol_label": label,
        "protocol_version": protocol.version,
        "dataset": protocol.dataset,
        "data_name": fingerprint["data_name"],
        "data_fingerprint": fingerprint,
        "task": protocol.task,
        "classes": list(protocol.classes),
        "recipe": recipe.key(),
        # A model that resolves its own recipe (the flow CNNs' default is "mer") says which it used.
        "recipe_name": plan.model_plan.training.get("recipe") or config.options.get("recipe", "paper"),
        "flow": flow_record,
        **plan.record(),
        "alignment": inputs.alignment,
        "seed": config.seed,
        "select": config.select,
        "options": config.options,
        "reconstruction": spec.reconstruction,
        "prepared": str(inputs.source),
        "cache_check": check,
        "allow_dropped": config.allow_dropped,
        "dropped": None if selection.clean else selection.to_dict(),
        "n_folds": len(folds),
        "folds_requested": wanted,
        "folds": {},
        "created": _now(),
        "finished": None,
        "status": "running",
        **environment(),
    }
    if meta_path.exists():
        meta = read_run_json(run_dir)
        mixed = _check_resumable(meta, fresh, run_dir, allow_mixed)
        if mixed:
            meta.setdefault("mixed", []).append(
                {"resumed": _now(), "folds_before": sorted(int(k) for k in meta.get("folds", {})), **mixed}
            )
        meta["cache_check"] = check
        try:
            if (run_dir / "metrics.json").exists():
                json.loads((run_dir / "metrics.json").read_text())
        except ValueError:
            log.warning("%s is damaged; it will be recomputed from the fold files", run_dir / "metrics.json")
            meta.setdefault("notices", []).append(f"{_now()}: metrics.json damaged; recomputed")
    else:
        meta = fresh
    make_dirs(run_dir / "folds")
    meta["folds_requested"] = sorted(set(meta.get("folds_requested", [])) | set(wanted))
    return OpenRun(config, size, protocol, recipe, clips, folds, wanted, run_dir, meta)


def write_fold(
    run: OpenRun, i: int, frame: pd.DataFrame, n_train: int, n_test: int, seconds: float
) -> dict[str, Any]:
    """Store fold ``i``'s predictions (``folds/fold_NNN.csv``) and its record (``fold_NNN.json``, read
    back by :func:`fold_records`), both atomically; returns the record."""
    entry = {
        "name": run.folds[i].name,
        "status": "done",
        "n_test": n_test,
        "n_train": n_train,
        "seconds": round(seconds, 3),
        "finished": _now(),
        "git_commit": environment()["git_commit"],
        "options": stable_hash(run.config.options, 8),
    }
    atomic_write_text(run.fold_file(i), frame.to_csv(index=False))
    entry.update(fold_record(run.fold_file(i)))  # its SHA-256: a damaged file is found and redone
    atomic_write_json(run.fold_file(i).with_suffix(".json"), entry)
    return entry


def train_fold(run: OpenRun, i: int, tensorboard: bool = False) -> dict[str, Any]:
    """Train and test fold ``i`` of an opened run in this process and store it (:func:`write_fold`);
    ``run.json`` is left to the caller."""
    start = time.perf_counter()
    frame, n_train, n_test = _fit_predict_fold(
        run.config,
        run.size,
        run.clips,
        run.folds[i],
        run.weights_file(i),
        run.work_dir(i),
        run.watch(i, tensorboard),
    )
    return write_fold(run, i, frame, n_train, n_test, time.perf_counter() - start)


def fold_records(run: OpenRun) -> dict[str, Any]:
    """Per-fold records of the finished requested folds, from their ``fold_NNN.json`` (folds finished
    before those files existed get a bare record)."""
    out = {}
    for i in run.wanted:
        if run.fold_file(i).exists():
            side = run.fold_file(i).with_suffix(".json")
            out[str(i)] = (
                json.loads(side.read_text())
                if side.exists()
                else run.meta["folds"].get(str(i), {"name": run.folds[i].name, "status": "done"})
            )
    return out


def _parallelism(run: OpenRun, given: int | None, world_size: int, main: bool) -> tuple[int, dict[str, Any]]:
    """Folds trained at once and the record of why (``parallel_folds`` in run.json)."""
    if given is not None:
        return given, {"folds": given, "reason": f"{given} (given: --parallel-folds)"}
    spec = MODELS.get(run.config.model)
    k = auto_parallel_folds(spec, world_size)
    if k <= 1:
        return 1, {"folds": 1, "reason": "1 (GPU, torchrun, or not a deep model of mer's catalogue)"}
    from mer.protocols.parallel import choose_parallel_folds

    choice = choose_parallel_folds(
        spec, run.size, run.recipe, run.protocol.num_classes, dict(run.config.options)
    )
    if main:
        log.info("parallel folds: %s", choice.reason)
    return choice.folds, choice.to_dict()


def run_bench(
    config: RunConfig,
    runs_dir: Path = Path("runs"),
    run_id: str | None = None,
    on_fold: Callable[[int, int, Fold, float], None] | None = None,
    on_prepare: Callable[[int, int], None] | None = None,
    parallel_folds: int | None = None,
    tensorboard: bool = False,
    verify: bool = True,
    allow_mixed: bool = False,
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
        tensorboard: Also write each fold's epochs as TensorBoard events under ``tensorboard/``.
        verify: Check the prepared cache's checksums once before training (sizes and shapes are
            checked on every load regardless); False (``--no-verify``) is recorded in run.json.
        allow_mixed: Resume a run whose finished folds were made by another git commit or with other
            options (``--allow-mixed``); the mix is recorded in run.json.

    Raises:
        RegistryError: unknown model or protocol (the message lists the valid names).
        RunConfigError: ``run_id`` exists with another configuration (or another commit / other
            options without ``allow_mixed``).
        DataMismatchError: ``run_id`` exists and its folds were made on other data.
        CacheError: the prepared cache is damaged (the message names the rebuilding command).
    """
    dinfo = distributed.init_from_env()
    if parallel_folds is not None and parallel_folds > 1 and dinfo.world_size > 1:
        raise RunConfigError("--parallel-folds and torchrun do not combine: use one or the other")
    main = dinfo.is_main
    run = open_run(config, runs_dir, run_id, on_prepare, verify, allow_mixed)
    folds, wanted, meta, meta_path = run.folds, run.wanted, run.meta, run.run_dir / "run.json"
    parallel_folds, meta["parallel_folds"] = _parallelism(run, parallel_folds, dinfo.world_size, main)

    todo = run.todo()
    distributed.barrier()  # every rank has its to-do list before rank 0 writes anything
    resumed = len(wanted) - len(todo)
    done = resumed
    finished = _finished_metrics(run) if not todo else None
    if finished is not None:  # nothing to train: a complete run is left byte for byte as it was
        return RunResult(run.run_dir, finished if main else None, done, len(folds), resumed)

    def record(i: int, frame: pd.DataFrame, n_train: int, n_test: int, seconds: float) -> None:
        nonlocal done
        if main:
            meta["folds"][str(i)] = write_fold(run, i, frame, n_train, n_test, seconds)
            atomic_write_json(meta_path, meta)
        done += 1
        if on_fold:
            on_fold(done, len(wanted), folds[i], seconds)

    if parallel_folds > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        k = min(parallel_folds, len(todo))
        ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
        level = logging.getLogger("mer").level  # set by the CLI (INFO, or WARNING under --quiet)
        cores = max(1, available_cores() // k)
        init = (config, run.size, asdict(run.recipe), ctx.Value("i", 0), cores, level)
        with ProcessPoolExecutor(k, mp_context=ctx, initializer=_worker_init, initargs=init) as pool:
            jobs = [
                pool.submit(_worker_fold, i, run.weights_file(i), run.work_dir(i), run.watch(i, tensorboard))
                for i in todo
            ]
            collect_folds(jobs, record)
    else:
        for i in todo:
            start = time.perf_counter()
            frame, n_train, n_test = _fit_predict_fold(
                config,
                run.size,
                run.clips,
                folds[i],
                run.weights_file(i),
                run.work_dir(i),
                run.watch(i, tensorboard) if main else None,
            )
            record(i, frame, n_train, n_test, time.perf_counter() - start)

    if not main:  # rank 0 writes predictions and metrics; the others are done
        return RunResult(run.run_dir, None, done, len(folds), resumed)
    meta["folds"].update(fold_records(run))  # folds finished before a resume keep their record
    return finalize(run.run_dir, meta, run.protocol)


def _finished_metrics(run: OpenRun) -> dict[str, Any] | None:
    """The metrics of a run that is already complete and whole on disk (None: it must be finalised)."""
    if run.meta.get("status") != "complete" or not (run.run_dir / "predictions.csv").is_file():
        return None
    try:
        return json.loads((run.run_dir / "metrics.json").read_text())
    except (OSError, ValueError):  # missing or damaged: recomputed from the fold files by finalize
        return None


def finalize(run_dir: Path, meta: dict[str, Any], protocol: Protocol) -> RunResult:
    """Concatenate the finished folds, write predictions.csv and metrics.json, update run.json."""
    files = sorted((run_dir / "folds").glob("fold_*.csv"))
    for f in files:
        check_fold_file(f, meta.get("folds", {}).get(str(int(f.stem.split("_")[1]))))
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


def merge_runs(run_dirs: list[Path], out_dir: Path, allow_mixed: bool = False) -> RunResult:
    """Join runs made with disjoint ``--folds`` (e.g. on several machines) into one run.

    Args:
        run_dirs: The runs to join.
        out_dir: The merged run's folder.
        allow_mixed: Join runs made by other git commits or with other options (recorded).

    Raises:
        RunConfigError: the runs differ in model, size, protocol, seed, selection, recipe (or commit or
            options without ``allow_mixed``), or two of them hold the same fold.
        DataMismatchError: the runs were made on different data (their data fingerprints differ).
        OptionValueError: ``out_dir`` exists and is not empty (nothing is overwritten).

    The merged run is written in a temporary folder beside ``out_dir`` and published with one rename:
    a merge that is killed leaves no half run behind.
    """
    if not run_dirs:
        raise OptionValueError("merge needs at least one run directory")
    metas = []
    for d in run_dirs:
        if not (Path(d) / "run.json").exists():
            raise MissingInputError(f"not a run directory (no run.json): {d}")
        metas.append(read_run_json(Path(d)))
    first = metas[0]
    mixed: dict[str, Any] = {}
    for d, m in zip(run_dirs[1:], metas[1:], strict=True):
        for diff in run_differences(first, m):
            if diff.kind == "data":
                raise DataMismatchError(
                    f"cannot merge {d}: it was made on other data than {run_dirs[0]} "
                    f"({diff.fingerprint_text()})"
                )
            if diff.kind == "config" or not allow_mixed:
                hint = "" if diff.kind == "config" else " (pass --allow-mixed to merge anyway, recorded)"
                raise RunConfigError(
                    f"cannot merge {d}: {diff.key} is {diff.other!r}, not {diff.reference!r}{hint}"
                )
            mixed.setdefault(diff.key, {str(run_dirs[0]): diff.reference})[str(d)] = diff.other
    owner: dict[str, Path] = {}
    folds_meta: dict[str, Any] = {}
    for d, m in zip(run_dirs, metas, strict=True):  # every check before the first byte is written
        for f in sorted((Path(d) / "folds").glob("fold_*.csv")):
            if f.name in owner:
                raise RunConfigError(f"fold {f.stem} is in both {owner[f.name]} and {d}")
            owner[f.name] = Path(d)
            try:
                check_fold_file(f, m.get("folds", {}).get(str(int(f.stem.split("_")[1]))))
            except IntegrityError as e:
                raise IntegrityError(f"{e}; rerun the `mer bench run` of {d} to redo that fold") from None
        folds_meta.update(m.get("folds", {}))
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        # a finished run there would lose its run.json, predictions and metrics
        raise OptionValueError(f"merge --out {out_dir}: it exists and is not empty; choose a new folder")
    make_dirs(out_dir.parent)
    remove_stale(out_dir)  # a killed merge's workspace
    tmp = workspace(out_dir)
    for name, d in owner.items():
        atomic_write_bytes(tmp / "folds" / name, (d / "folds" / name).read_bytes())
    for d in run_dirs:
        weights = Path(d) / "weights"
        for w in sorted(weights.glob("*.safetensors")) if weights.is_dir() else []:
            atomic_write_bytes(tmp / "weights" / w.name, w.read_bytes())
    meta = {
        **first,
        "run_id": out_dir.name,
        "folds": folds_meta,
        "folds_requested": sorted(int(k) for k in folds_meta),
        "merged_from": [str(d) for d in run_dirs],
    }
    if mixed:
        meta["mixed"] = [*first.get("mixed", []), {"merged": _now(), **mixed}]
    result = finalize(tmp, meta, PROTOCOLS.get(first["protocol"]))
    publish_dir(tmp, out_dir)
    result.run_dir = out_dir
    return result
