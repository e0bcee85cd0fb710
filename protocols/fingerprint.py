"""Data identity: which data a run saw, recorded so that runs on different data are never mixed.

A run's **data fingerprint** (``run.json`` → ``data_fingerprint``) holds the annotation sheet's SHA-256,
the dataset's frame layout, the number of clips and the clips per class after the protocol's filters,
and, for SynthME, the parameters it was generated with. Resuming a run, merging runs and the leaderboard
compare fingerprints (:func:`mer.protocols.runner.run_differences`): two runs of one protocol on
different data are refused, or, in the leaderboard, shown in separate tables.

SynthME is generated, so "synthme" alone does not say which data it is. The **default** SynthME (what
``loso-synth-3`` generates on first use, ``mer data synth`` with default settings) keeps the plain
names; any other generation is named after its data: dataset ``synthme@<id>``, protocol
``loso-synth-3@<id>`` (in the run id, the run's ``protocol_label`` and the leaderboard), where ``<id>``
hashes its sheet and generation parameters. Real datasets keep their names: their sheets have no
default, and two sheets of one dataset (CASME II's 2014 and 2019 releases) differ in the fingerprint.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from mer.errors import IntegrityError
from mer.protocols.clipset import ClipSet
from mer.protocols.io import stable_hash

#: Written by :func:`mer.protocols.synthme.write_synthme` beside the sheet.
SYNTH_PARAMS_FILE = "SynthME-params.json"
#: Bumped when the SynthME generator draws other data from the same parameters.
SYNTH_GENERATOR_VERSION = 1


class DataMismatchError(IntegrityError, ValueError):
    """Runs (or folds of one run) made on different data under one protocol name."""


def synth_params(**given: Any) -> dict[str, Any]:
    """The complete, JSON-shaped generation parameters of a SynthME call (defaults filled in)."""
    from mer.protocols.synthme import write_synthme

    params = {
        name: p.default
        for name, p in inspect.signature(write_synthme).parameters.items()
        if p.default is not inspect.Parameter.empty and name != "progress"  # what is drawn, not how shown
    }
    params.update(given)
    params["generator_version"] = SYNTH_GENERATOR_VERSION
    return json.loads(json.dumps(params))  # tuples → lists, as read back from disk


def read_synth_params(root: Path) -> dict[str, Any] | None:
    """The parameters recorded beside a SynthME sheet (None when absent: a copy from an older mer)."""
    path = Path(root) / SYNTH_PARAMS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def data_id(sheet_sha256: str, layout: str, synth: dict[str, Any] | None) -> str:
    """Eight hex digits naming the data itself (not the protocol's view of it)."""
    return stable_hash({"sheet": sheet_sha256, "layout": layout, "synth": synth}, 8)


def data_fingerprint(meta: dict[str, Any], protocol: Any, clips: ClipSet) -> dict[str, Any]:
    """The fingerprint of the data a run of ``protocol`` sees (see the module docstring).

    Args:
        meta: What identifies the data: the prepared cache's meta.json (``sheet_sha256``, ``layout``,
            ``root``), or the same fields for a dataset added as flow images.
        protocol: The :class:`~mer.protocols.protocol.Protocol`.
        clips: The protocol's clip set (after its filters).
    """
    sheet_sha = meta.get("sheet_sha256", "")
    layout = meta.get("layout", "")
    labels = np.asarray(clips.labels)
    if labels.ndim == 1:
        counts = np.bincount(labels.astype(np.int64), minlength=len(clips.class_names))
    else:  # multi-label (AU detection): positives per label
        counts = labels.astype(np.int64).sum(axis=0)
    fp: dict[str, Any] = {
        "dataset": protocol.dataset,
        "sheet_sha256": sheet_sha,
        "layout": layout,
        "n_samples": len(clips),
        "n_subjects": len(set(clips.subjects)),
        "class_counts": {c: int(n) for c, n in zip(clips.class_names, counts, strict=True)},
    }
    synth = None
    if protocol.dataset == "synthme":
        synth = read_synth_params(Path(meta.get("root", "")))
        fp["synth"] = synth
    fp["data_id"] = data_id(sheet_sha, layout, synth)
    default = protocol.dataset != "synthme" or synth == synth_params()
    fp["data_name"] = protocol.dataset if default else f"{protocol.dataset}@{fp['data_id']}"
    fp["protocol_label"] = protocol.name if default else f"{protocol.name}@{fp['data_id']}"
    fp["id"] = stable_hash({k: v for k, v in fp.items() if k != "id"}, 12)
    return fp
