"""User configuration: where ``mer`` keeps its cache and which dataset roots are registered.

Everything lives under ``$MER_HOME`` (default ``~/.cache/mer``):

- ``datasets.json``: dataset name → {"root": ..., "annotations": ..., "release": ...} recorded by
  ``mer data add``;
- ``prepared/<dataset>/<recipe-hash>/``: prepared clip caches;
- ``data/synthme``: the SynthME copy that ``loso-synth-3`` generates on first use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mer.errors import BadInputError, OptionValueError
from mer.protocols.io import atomic_write_text


def mer_home() -> Path:
    """The root of mer's cache and configuration (``$MER_HOME`` or ``~/.cache/mer``)."""
    return Path(os.environ.get("MER_HOME", Path.home() / ".cache" / "mer")).expanduser()


def _config_path() -> Path:
    return mer_home() / "datasets.json"


def registered_datasets() -> dict[str, dict[str, Any]]:
    """Dataset name → its recorded entry (root, annotations)."""
    path = _config_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BadInputError(f"{path}: not valid JSON ({e}); fix or delete it") from e


def add_dataset(
    name: str, root: Path, annotations: Path | None = None, release: str | None = None
) -> dict[str, Any]:
    """Record a dataset root (and optionally its annotation file) for later commands.

    The release (raw frames or cropped faces, :mod:`mer.protocols.release`) is recognised and recorded
    with its evidence, unless ``release`` names it.
    """
    from mer.protocols.release import KINDS, detect_release

    entries = registered_datasets()
    entry: dict[str, Any] = {"root": str(Path(root).expanduser().resolve())}
    if annotations is not None:
        entry["annotations"] = str(Path(annotations).expanduser().resolve())
    if release is None:
        found = detect_release(name, Path(root))
        entry["release"], entry["release_evidence"] = found.kind, found.evidence
    elif release in KINDS:
        entry["release"], entry["release_evidence"] = release, "given with --release"
    else:
        raise OptionValueError(f"--release must be one of {', '.join(KINDS)}, not {release!r}")
    entries[name] = entry
    atomic_write_text(_config_path(), json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return entry


def dataset_entry(name: str) -> dict[str, Any] | None:
    """The recorded entry of ``name``, or None."""
    return registered_datasets().get(name)


def set_dataset_entry(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Record ``entry`` as the whole entry of ``name`` (layouts with settings of their own use it)."""
    entries = registered_datasets()
    entries[name] = entry
    atomic_write_text(_config_path(), json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return entry
