"""Initialisation sources for ``mer bench run --init``: where a deep model's starting weights come from.

``--init`` accepts, in order of lookup:

- ``clip`` / ``random`` (or the catalogue name ``clip-vit-b16``): the builder's own choices (CLIP
  ViT-B/16 image weights inflated to 3D, from open_clip's Hub cache; or random);
- ``run:RUN_ID``: the weights a finished run kept (``--save-weights``; its last saved fold). This is the
  DFME → LOSO chain of SPEC A.3: train on ``dfme-test-a`` with ``--save-weights last``, then start each
  LOSO fold from that model's vision encoder (the classification head is new, the classes differ);
- ``local-dir:/path`` or an artifact folder, ``hf-hub:org/name[@rev]`` or a catalogue name: a zoo artifact,
  verified against its recorded hash, read from the local cache only (``mer zoo pull`` fetches it);
- a catalogue checkpoint (``uniformerv2-b16-k710``): the file ``mer zoo pull`` put in the cache;
- a local checkpoint file (``.safetensors``, or a tensors-only ``.pth`` / ``.pyth``, e.g. a UniFormerV2
  release such as the authors' SSv2 one): checked now, so a pickle that needs code is refused before any
  training starts; the builder converts it to its layout (:mod:`mer.zoo.convert`, what it adapts is
  logged) and refuses, naming them, tensors it cannot place.

The result is the local file path the model builder's ``init`` option takes.
"""

from __future__ import annotations

from pathlib import Path

from mer.errors import OptionValueError
from mer.zoo.artifact import WEIGHTS_FILE, artifact_from_run, run_path, verify_artifact
from mer.zoo.convert import load_checkpoint

BUILDER_CHOICES = ("clip", "random")


def _check_deep(model: str, source: str) -> None:
    from mer.registrations import load_all
    from mer.zoo.api import MODELS

    load_all()
    spec = MODELS.get(model)
    if spec.family != "deep":
        raise OptionValueError(
            f"--init {source}: that model is {model} ({spec.family}); only deep models' weights "
            "can initialise another model"
        )


def resolve_init(value: str | None, model: str, runs_dir: Path = Path("runs")) -> str | None:
    """Turn an ``--init`` value into what ``model``'s builder takes (a local file path, or clip/random).

    Args:
        value: The ``--init`` text (None: the builder's default).
        model: The model being trained (must be a deep model).
        runs_dir: Where ``run:`` looks for run directories.

    Raises:
        ValueError: ``model`` takes no initialisation, or the source is not a deep model's weights.
        FileNotFoundError: the source does not exist (or is not cached: the message names `mer zoo pull`).
        mer.zoo.artifact.IntegrityError: an artifact's weights fail their hash check.
        mer.zoo.convert.UnsafeCheckpointError: a pickle that needs code.
    """
    if value is None or value == "":
        return None
    _check_deep(model, value)
    if value in BUILDER_CHOICES:
        return value
    from mer.zoo.hub import parse_ref, resolve_local

    if value.startswith("run:"):
        config, weights = artifact_from_run(run_path(value[len("run:") :], runs_dir))
        _check_deep(config.model, value)
        return str(weights.resolve())
    path = Path(value).expanduser()
    if path.is_file():
        load_checkpoint(path)  # refuses pickles that need code, and unreadable files, before training
        return str(path.resolve())
    ref = parse_ref(value)
    if ref.kind == "open_clip":
        return ref.entry.init if ref.entry and ref.entry.init else "clip"
    if ref.kind == "checkpoint":  # a third-party release (uniformerv2-b16-k710): the builder converts it
        from mer.zoo.checkpoints import cached_checkpoint

        return str(cached_checkpoint(ref).absolute())  # the snapshot link keeps the .pyth suffix
    folder, expected, hint = resolve_local(ref)
    config = verify_artifact(folder, expected, hint)
    _check_deep(config.model, value)
    return str((folder / WEIGHTS_FILE).resolve())


def init_provenance(init: str | None) -> dict | None:
    """What made a resolved ``--init`` file: the run (``<run>/weights/fold_NNN.safetensors`` beside
    ``<run>/run.json``) or the zoo artifact (``config.json`` beside the weights); None for anything else
    (``clip``, ``random``, a raw checkpoint).

    Returns:
        ``{"model", "size", "protocol", "source"}`` of the producer.
    """
    import json

    if not init or init in BUILDER_CHOICES:
        return None
    path = Path(init)
    for meta in (path.parent.parent / "run.json", path.parent / "config.json"):
        if meta.is_file():
            try:
                d = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(d, dict) and "model" in d and "protocol" in d:
                keys = ("model", "size", "protocol")
                return {**{k: d.get(k) for k in keys}, "source": str(meta)}
    return None


def describe_init(init: str | None, default: str) -> dict:
    """The ``--init`` of a run as ``--dry-run`` and run.json show it: value, file, its SHA-256 and size,
    and what made it. ``default`` is what the builder starts from when ``init`` is None.

    A file is hashed now (what exists on this machine is what the run will read); a source that is not
    on this machine says so instead of a checksum.
    """
    from mer.protocols.io import file_sha256

    value = init or default
    out: dict = {"init": value, "path": None, "sha256": None, "bytes": None, "from": None}
    path: Path | None = None
    if value == "clip":
        from mer.merclip.text import MissingWeightsError, _clip_cache_file

        try:
            path = Path(_clip_cache_file())
        except MissingWeightsError:
            out["note"] = "CLIP ViT-B/16 weights not in the local cache: `mer zoo pull clip-vit-b16`"
    elif value != "random":
        path = Path(value)
        out["from"] = init_provenance(value)
    if path is not None:
        out["path"] = str(path)
        if path.is_file():
            out["sha256"], out["bytes"] = file_sha256(path), path.stat().st_size
        else:
            out["note"] = f"not found on this machine: {path}"
    return out


def describe_checkpoint(init: str | None, size: str) -> dict | None:
    """For a raw checkpoint ``--init`` (a UniFormerV2 release, the catalogue's ``uniformerv2-b16-k710``, a
    MER-CLIP checkpoint): where it came from and what converting it for ``size`` does, for ``--dry-run``
    and run.json. None for ``clip`` / ``random`` / mer's own weights (a run, an artifact).

    Raises:
        mer.merclip.convert.ConversionError: the builder would refuse it (keys named).
    """
    if not init or init in BUILDER_CHOICES or init_provenance(init) is not None:
        return None
    path = Path(init)
    if not path.is_file() or path.suffix == ".safetensors":
        return None
    from mer.zoo.convert import convert_checkpoint
    from mer.zoo.hub import load_catalogue

    out: dict = {"catalogue": None}
    for entry in load_catalogue():
        # a pulled catalogue file sits at .../models--org--name/snapshots/<commit>/<filename>
        repo_dir = "models--" + (entry.repo_id or "").replace("/", "--")
        if entry.kind == "checkpoint" and path.name == entry.filename and repo_dir in path.parts:
            out.update(catalogue=entry.name, repo_id=entry.repo_id, commit=path.parent.name)
    report = convert_checkpoint(path, "uniformerv2", size)
    report.refuse_unmappable(str(path))
    out["conversion"] = report.record()
    return out
