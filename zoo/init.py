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
