"""Zoo artifacts: one folder per trained model, made from a run directory and loaded back as an estimator.

An artifact folder holds exactly three files:

- ``config.json``: :class:`ArtifactConfig` (model name, size, options, classes, protocol, preparation
  recipe, selection rule, the run's metrics, and the SHA-256 of the weights);
- ``model.safetensors``: the estimator's :meth:`state_dict` (never a pickle);
- ``README.md``: the model card (:mod:`mer.zoo.card`).

The weights of an artifact are **one fold's model**: a LOSO run trains one model per fold. By default the
run's last saved fold is used (``--save-weights last`` keeps exactly that one); ``fold=`` picks another
when the run kept them all (``--save-weights all``). The metrics in the config and card are the whole
run's (every fold's predictions concatenated), which is what the protocol reports.

The same loader reads ``hf-hub:org/name[@revision]`` (from the local Hugging Face cache only),
``local-dir:/path``, ``run:RUN_ID`` and catalogue names (:func:`load_artifact`). Before any tensor is
read, the weights' SHA-256 is compared with the one recorded at export, so a file that was cut short or
altered is refused with a message naming it; nothing is half loaded. ``config.json`` carries the SHA-256
of its own other fields (``config_sha256``), so an edited config is refused the same way, and every
field is checked for type and range before the model is built (a ``frames: 1e9`` cannot hang a load).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mer import errors
from mer.errors import BadInputError, MissingInputError, OptionValueError
from mer.protocols.io import atomic_path, atomic_write_json, atomic_write_text, file_sha256

FORMAT = "mer-artifact/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
ARTIFACT_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)
# Builder options that describe where a run came from, not what the model is: not re-applied on load.
_RUN_ONLY_OPTIONS = ("init", "work_dir", "device")


class IntegrityError(errors.IntegrityError, ValueError):
    """An artifact's weights do not match the hash recorded when it was made (cut short or altered)."""


@dataclass
class ArtifactConfig:
    """``config.json`` of an artifact: everything needed to rebuild and describe the model.

    Attributes:
        format: Artifact format version (``mer-artifact/1``).
        model: Model registry name (``merclip``, ``lbptop-svm``...).
        size: Model size (``base``, ``tiny``).
        options: Builder options the run used (run-only ones such as ``init`` are kept for the record
            but not re-applied).
        num_classes: Output classes.
        classes: Class names in label-index order.
        task: ``emotion`` or ``au``.
        protocol: Protocol the run followed, and ``protocol_version``.
        dataset: Dataset of the protocol.
        recipe: Preparation recipe (frames, size, sampler, align...), as the run resolved it.
        recipe_name: Training recipe (``paper`` / ``official``).
        select: Model selection rule (``last`` = honest; ``oracle`` = best epoch on the test fold).
        fold: Fold whose model the weights are; ``fold_name`` names it (e.g. the held-out subject).
        seed: Run seed.
        run_id: Run directory name.
        reconstruction: True when the method is rebuilt from an abstract.
        metrics: Whole-run metrics (UF1, UAR, ACC, WF1, per-fold mean ± std, folds done).
        weights_sha256: SHA-256 of ``model.safetensors``; ``weights_bytes`` its size.
        mer_version: Package version that trained it; ``git_commit`` its commit.
        config_sha256: SHA-256 of every other field (:func:`config_digest`), written at export.
    """

    model: str
    size: str
    num_classes: int
    classes: list[str]
    protocol: str
    format: str = FORMAT
    options: dict[str, Any] = field(default_factory=dict)
    task: str = "emotion"
    protocol_version: str | int | None = None
    dataset: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    recipe_name: str = "paper"
    select: str = "last"
    fold: int | None = None
    fold_name: str = ""
    seed: int = 0
    run_id: str = ""
    reconstruction: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    weights_bytes: int = 0
    mer_version: str = ""
    git_commit: str | None = None
    config_sha256: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = CONFIG_FILE) -> ArtifactConfig:
        """Parse ``config.json``; unknown keys from a newer mer are ignored, missing required ones named."""
        if not str(data.get("format", "")).startswith("mer-artifact/"):
            raise BadInputError(f"{source}: not a mer artifact config (format {data.get('format')!r})")
        known = {f.name for f in fields(cls)}
        required = ("model", "size", "num_classes", "classes", "protocol")
        missing = [k for k in required if k not in data]
        if missing:
            raise BadInputError(f"{source}: missing field(s) {', '.join(missing)}")
        config = cls(**{k: v for k, v in data.items() if k in known})
        validate_config(config, source)
        return config

    def build_options(self) -> dict[str, Any]:
        """The options to rebuild the estimator with."""
        return {k: v for k, v in self.options.items() if k not in _RUN_ONLY_OPTIONS}


@dataclass
class LoadedModel:
    """What :func:`load_artifact` returns: a ready estimator, its config and where it came from."""

    estimator: Any
    config: ArtifactConfig
    source: str
    path: Path


sha256_file = file_sha256  # one implementation, in mer.protocols.io

# Bounds of the fields a loader acts on: generous, but a typo or an edit cannot make it allocate or loop
# without end.
_RECIPE_BOUNDS = {"frames": (1, 1024), "size": (8, 4096), "resize_short": (8, 8192)}
_MAX_CLASSES = 10_000


def config_digest(data: dict[str, Any]) -> str:
    """SHA-256 of a config's fields other than ``config_sha256`` (sorted keys, compact JSON)."""
    import hashlib

    body = {k: v for k, v in data.items() if k != "config_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def config_record(config: ArtifactConfig) -> dict[str, Any]:
    """What ``config.json`` holds: every field, with ``config_sha256`` computed over the others."""
    data = asdict(config)
    data["config_sha256"] = config_digest(data)
    return data


def write_config(folder: Path, config: ArtifactConfig) -> None:
    """Write ``config.json`` of an artifact folder (atomically, with its own checksum)."""
    atomic_write_json(Path(folder) / CONFIG_FILE, config_record(config))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_config(config: ArtifactConfig, source: str = CONFIG_FILE) -> None:
    """Check every field's type and range.

    Raises:
        BadInputError: the first field that is wrong, named with its value.
    """

    def bad(name: str, why: str) -> BadInputError:
        return BadInputError(f"{source}: {name} {getattr(config, name, None)!r} {why}")

    for name in ("model", "size", "protocol", "task", "dataset", "recipe_name", "select", "run_id"):
        if not isinstance(getattr(config, name), str):
            raise bad(name, "is not text")
    if not _is_int(config.num_classes) or not 1 <= config.num_classes <= _MAX_CLASSES:
        raise bad("num_classes", f"is not a whole number in 1..{_MAX_CLASSES}")
    if not isinstance(config.classes, list) or not all(isinstance(c, str) for c in config.classes):
        raise bad("classes", "is not a list of names")
    if len(config.classes) != config.num_classes:
        raise bad("classes", f"has {len(config.classes)} names for num_classes {config.num_classes}")
    for name in ("options", "recipe", "metrics"):
        if not isinstance(getattr(config, name), dict):
            raise bad(name, "is not an object")
    if config.fold is not None and (not _is_int(config.fold) or config.fold < 0):
        raise bad("fold", "is not a fold number")
    if not _is_int(config.seed) or not _is_int(config.weights_bytes) or config.weights_bytes < 0:
        raise bad("seed" if not _is_int(config.seed) else "weights_bytes", "is not a whole number")
    for key, (lo, hi) in _RECIPE_BOUNDS.items():
        v = config.recipe.get(key)
        if v is not None and (not _is_int(v) or not lo <= v <= hi):
            raise BadInputError(f"{source}: recipe.{key} {v!r} is not a whole number in {lo}..{hi}")
    from mer.protocols.prepare import Recipe

    try:
        Recipe(**config.recipe)
    except TypeError as e:
        raise BadInputError(f"{source}: recipe has a field preparation does not know ({e})") from None


# --------------------------------------------------------------------------------------------- runs


def run_weights(run_dir: Path, fold: int | None = None) -> tuple[int, Path]:
    """The weights file of ``fold`` (default: the last saved fold) of a run.

    Raises:
        FileNotFoundError: not a run directory, or the run kept no weights (names ``--save-weights``).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise MissingInputError(f"not a run directory (no run.json): {run_dir}")
    files = sorted((run_dir / "weights").glob("fold_*.safetensors")) if (run_dir / "weights").is_dir() else []
    if not files:
        raise MissingInputError(
            f"run {run_dir} kept no weights; rerun it with `mer bench run ... --save-weights last` "
            "(or `all` to keep every fold's model)"
        )
    by_fold = {int(f.stem.split("_")[1]): f for f in files}
    if fold is None:
        fold = max(by_fold)
    if fold not in by_fold:
        raise MissingInputError(
            f"run {run_dir} has weights for fold(s) {sorted(by_fold)}, not {fold} (use --save-weights all)"
        )
    return fold, by_fold[fold]


def artifact_from_run(run_dir: Path, fold: int | None = None) -> tuple[ArtifactConfig, Path]:
    """The artifact config of a finished run (weights hashed now) and its weights file."""
    run_dir = Path(run_dir)
    fold, weights = run_weights(run_dir, fold)
    meta = json.loads((run_dir / "run.json").read_text())
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    config = ArtifactConfig(
        model=meta["model"],
        size=meta["size"],
        num_classes=len(meta["classes"]),
        classes=list(meta["classes"]),
        protocol=meta["protocol"],
        options=dict(meta.get("options", {})),
        task=meta.get("task", "emotion"),
        protocol_version=meta.get("protocol_version"),
        dataset=meta.get("dataset", ""),
        recipe=dict(meta.get("recipe", {})),
        recipe_name=meta.get("recipe_name", "paper"),
        select=meta.get("select", "last"),
        fold=fold,
        fold_name=meta.get("folds", {}).get(str(fold), {}).get("name", ""),
        seed=int(meta.get("seed", 0)),
        run_id=meta.get("run_id", run_dir.name),
        reconstruction=bool(meta.get("reconstruction", False)),
        metrics=metrics,
        weights_sha256=sha256_file(weights),
        weights_bytes=weights.stat().st_size,
        mer_version=str(meta.get("mer_version", "")),
        git_commit=meta.get("git_commit"),
    )
    validate_config(config, str(run_dir / "run.json"))
    return config, weights


def export_run(
    run_dir: Path,
    out_dir: Path,
    fold: int | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
) -> ArtifactConfig:
    """Write the artifact folder (config.json, model.safetensors, README.md) of a run into ``out_dir``;
    ``repo_id`` / ``revision``: where it is being pushed (the card's usage snippet loads it from there)."""
    from mer.zoo.card import render_card

    config, weights = artifact_from_run(run_dir, fold)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS_FILE) as tmp:
        shutil.copyfile(weights, tmp)
        if sha256_file(tmp) != config.weights_sha256:  # the run's file changed while we copied it
            raise IntegrityError(f"{weights} changed while it was being copied; try again")
    write_config(out_dir, config)
    card = render_card(config, repo_id, revision, folder=None if repo_id else str(out_dir.resolve()))
    atomic_write_text(out_dir / CARD_FILE, card)
    return config


# ------------------------------------------------------------------------------------------ loading


def read_config(folder: Path) -> ArtifactConfig:
    """``config.json`` of an artifact folder."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise MissingInputError(f"not a mer artifact (no {CONFIG_FILE}): {folder}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise IntegrityError(f"{path}: not valid JSON ({e}); the download may be incomplete") from e
    if not isinstance(data, dict):
        raise IntegrityError(f"{path}: not a JSON object")
    recorded = data.get("config_sha256")
    if not recorded:
        raise IntegrityError(f"{path} records no config_sha256; refusing a config that cannot be verified")
    actual = config_digest(data)
    if actual != recorded:
        raise IntegrityError(
            f"{path}: its fields hash to {actual}, not the config_sha256 {recorded} recorded at export; "
            "the file was edited or damaged, so the model is not loaded"
        )
    return ArtifactConfig.from_dict(data, str(path))


def verify_artifact(folder: Path, expected_sha256: str | None = None, fix_hint: str = "") -> ArtifactConfig:
    """Check that ``model.safetensors`` is the file the config was made with.

    Args:
        folder: Artifact folder.
        expected_sha256: A hash known independently (the catalogue's); must agree with the config's.
        fix_hint: Appended to the error (e.g. the ``mer zoo pull ... --force-download`` that refetches it).

    Raises:
        IntegrityError: size or SHA-256 differ (file, expected and actual hash named).
        FileNotFoundError: a file is missing.
    """
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise MissingInputError(f"artifact {folder} lacks {WEIGHTS_FILE}")
    hint = f"; {fix_hint}" if fix_hint else ""
    if expected_sha256 and config.weights_sha256 != expected_sha256:
        raise IntegrityError(
            f"{folder / CONFIG_FILE} records weights sha256 {config.weights_sha256}, but the catalogue pins "
            f"{expected_sha256}: refusing an artifact that is not the published one{hint}"
        )
    if not config.weights_sha256:
        raise IntegrityError(f"{folder / CONFIG_FILE} records no weights hash; refusing unverifiable weights")
    actual = sha256_file(weights)
    if actual != config.weights_sha256:
        size = weights.stat().st_size
        how = (
            f" ({size} bytes, expected {config.weights_bytes}: cut short?)"
            if size != config.weights_bytes
            else ""
        )
        raise IntegrityError(
            f"{weights}: sha256 {actual} does not match {config.weights_sha256} recorded in {CONFIG_FILE}"
            f"{how}; the file was altered or the download is incomplete, so it is not loaded{hint}"
        )
    return config


def build_from_config(config: ArtifactConfig, weights: Path) -> Any:
    """Rebuild the estimator of ``config`` and load ``weights`` into it (weights already verified)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from mer.registrations import load_all
    from mer.zoo.api import MODELS

    load_all()
    spec = MODELS.get(config.model)
    size = spec.check_size(config.size)
    from mer.zoo.options import check_options

    try:
        check_options(spec, config.build_options())
    except errors.MerError as e:
        raise BadInputError(f"{weights.parent / CONFIG_FILE}: options: {e}") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise IntegrityError(f"{weights}: not a readable safetensors file ({e})") from e
    # the runner seeds fold k with seed * 1000 + k; seeded predictors (chance) then predict as in the run
    seed = config.seed * 1000 + (config.fold or 0)
    est = spec.build(num_classes=config.num_classes, size=size, seed=seed, **config.build_options())
    if not hasattr(est, "load_state_dict"):
        raise OptionValueError(
            f"model {config.model} cannot load saved weights (its estimator has no load_state_dict)"
        )
    est.load_state_dict(state)
    return est


def load_artifact(ref: str, runs_dir: Path = Path("runs"), fold: int | None = None) -> LoadedModel:
    """Load a trained model from a zoo reference, never reaching the network.

    Args:
        ref: ``hf-hub:org/name[@revision]`` or a catalogue name (read from the local Hugging Face cache;
            ``mer zoo pull`` fetches it), ``local-dir:/path`` (an artifact folder), ``run:RUN_ID`` (a run
            directory under ``runs_dir``, or a path to one).
        runs_dir: Where ``run:`` looks.
        fold: For ``run:``, which fold's weights (default the last saved).

    Raises:
        IntegrityError: the weights are not the ones the artifact was made with.
        FileNotFoundError: not cached (the message names the ``mer zoo pull`` that fixes it) or missing.
    """
    from mer.zoo.hub import parse_ref, resolve_local

    parsed = parse_ref(ref)
    if parsed.kind == "run":
        config, weights = artifact_from_run(run_path(parsed.target, runs_dir), fold)
        return LoadedModel(build_from_config(config, weights), config, ref, weights.parent)
    folder, expected, hint = resolve_local(parsed)
    config = verify_artifact(folder, expected, hint)
    return LoadedModel(build_from_config(config, folder / WEIGHTS_FILE), config, ref, folder)


def run_path(target: str, runs_dir: Path = Path("runs")) -> Path:
    """``run:`` target → run directory: a path to one, or a name under ``runs_dir``."""
    direct = Path(target).expanduser()
    if (direct / "run.json").is_file():
        return direct
    candidate = Path(runs_dir) / target
    if (candidate / "run.json").is_file():
        return candidate
    raise MissingInputError(f"no run {target!r} (looked for {candidate}/run.json and {direct}/run.json)")
