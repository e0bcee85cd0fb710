"""Third-party checkpoints of the catalogue (``kind: "checkpoint"``): one file of a Hub repository that mer
converts to its own layout, e.g. ``uniformerv2-b16-k710`` (UniFormerV2-B/16 trained on K710 then K400,
``Andy1621/uniformerv2`` : ``k400+k710_uniformerv2_b16_8x224.pyth``).

``mer zoo pull NAME`` downloads the file into the Hugging Face cache, checks its size (and SHA-256 when
the catalogue pins one), then converts it once for the entry's model size and prints what the converter
found (wrapper key, prefix, the 8 → 16 frame inflation, re-indexed global blocks, the head it drops): a
file that cannot be converted is refused at pull time, not after the first GPU hour.
``--init NAME`` reads the cached file only (offline); the model builder converts it again for its own
size (the conversion is a renaming plus one inflated tensor: seconds).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mer.protocols.io import file_sha256
from mer.zoo.artifact import IntegrityError

if TYPE_CHECKING:
    from mer.zoo.convert import ConversionReport
    from mer.zoo.hub import Ref


@dataclass
class CheckpointPull:
    """A pulled checkpoint: the cached file, its hash and the conversion report."""

    path: Path
    sha256: str
    bytes: int
    conversion: ConversionReport


def _download(ref: Ref, local_only: bool, force_download: bool = False) -> Path:
    from huggingface_hub import hf_hub_download

    from mer.zoo.hub import NotCachedError, _hub_call, hf_cache_dir, hf_endpoint, unlink_cached

    entry = ref.entry
    if force_download and not local_only:  # the cache would keep the old link: drop it first
        with contextlib.suppress(NotCachedError):
            unlink_cached(_download(ref, local_only=True).parent, [Path(entry.filename).name])
    path = _hub_call(
        ref,
        hf_hub_download,
        entry.repo_id,
        entry.filename,
        revision=ref.revision,
        cache_dir=hf_cache_dir(),
        endpoint=hf_endpoint(),
        local_files_only=local_only,
        force_download=force_download,
    )
    return Path(path)


def verify_checkpoint(ref: Ref, path: Path) -> str:
    """Check the file against the catalogue (size; SHA-256 when pinned) and return its SHA-256.

    Raises:
        IntegrityError: size or hash differ; the message names the command that refetches it.
    """
    from mer.zoo.hub import pull_command

    entry = ref.entry
    hint = f"refetch it with `{pull_command(ref)} --force-download`"
    size = path.stat().st_size
    if entry.bytes is not None and size != entry.bytes:
        raise IntegrityError(
            f"{path}: {size} bytes, but {entry.repo_id}:{entry.filename} is {entry.bytes} bytes "
            f"(download cut short or another file); it is not loaded; {hint}"
        )
    digest = file_sha256(path)
    if entry.weights_sha256 and digest != entry.weights_sha256:
        raise IntegrityError(
            f"{path}: sha256 {digest} does not match {entry.weights_sha256} pinned in the catalogue; "
            f"the file was altered, so it is not loaded; {hint}"
        )
    return digest


def pull_checkpoint(ref: Ref, offline: bool, force_download: bool = False) -> CheckpointPull:
    """Download (or, offline, find) the entry's file, verify it and convert it for the entry's size.

    Raises:
        IntegrityError: the file is not the catalogue's.
        mer.merclip.convert.ConversionError: a tensor the converter cannot place (named).
    """
    from mer.zoo.convert import convert_checkpoint

    path = _download(ref, local_only=offline, force_download=force_download)
    digest = verify_checkpoint(ref, path)
    report = convert_checkpoint(path, ref.entry.converter or "uniformerv2", ref.entry.size or "base")
    report.refuse_unmappable(f"{ref.entry.repo_id}:{ref.entry.filename}")
    return CheckpointPull(path, digest, path.stat().st_size, report)


def cached_checkpoint(ref: Ref) -> Path:
    """The entry's file in the local cache, size-checked, for ``--init NAME`` (never downloads).

    Raises:
        NotCachedError: never pulled (the message names ``mer zoo pull NAME``).
        IntegrityError: the cached file is not the catalogue's.
    """
    path = _download(ref, local_only=True)
    entry = ref.entry
    if entry.bytes is not None and path.stat().st_size != entry.bytes:
        verify_checkpoint(ref, path)  # raises with the refetch command
    return path
