"""Caches that cannot be corrupted quietly: locked builds, atomic publication, recorded checksums.

The prepared clip caches (:mod:`mer.protocols.prepare`) and the flow caches beside them
(:mod:`mer.protocols.flow`) follow one discipline:

- **one builder at a time**: a build holds a file lock (the ``filelock`` package) named after its
  target, so a second process that wants the same cache waits for the first and then uses its result
  instead of redoing or deleting its work (the fold-per-machine use of DESIGN);
- **a private workspace**: each process builds in its own temporary name beside the target and
  publishes it with one atomic rename; a killed build leaves only that temporary, removed by the next
  builder (who holds the lock, so no live process owns it);
- **a record of what was written**: every file's size and SHA-256, and an array's shape and dtype, go
  into the cache's metadata. Opening a cache checks sizes and shapes (cheap, every load); the checksums
  are checked once at the start of a run (``--no-verify`` skips that and is recorded) and on demand by
  ``mer data verify``. A mismatch is a :class:`CacheError` naming the folder and the command that
  rebuilds it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from mer.errors import IntegrityError
from mer.protocols.io import file_sha256

log = logging.getLogger("mer.cache")

#: What a load checks: "size" (sizes and shapes, every load) or "sha256" (also the checksums).
VERIFY_LEVELS = ("size", "sha256")


class CacheError(IntegrityError):
    """A cache whose files do not match their record (truncated, overwritten, missing)."""


@contextmanager
def build_lock(target: Path, what: str) -> Iterator[None]:
    """Hold the build lock of ``target`` (``.<name>.lock`` beside it); say so when another process has it."""
    lock = FileLock(str(target.parent / f".{target.name}.lock"))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        log.warning("waiting for another process building %s (%s)", what, target)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def workspace(target: Path) -> Path:
    """This process's private temporary name for building ``target`` (same folder: the rename is atomic)."""
    return target.parent / f".{target.name}.tmp-{os.getpid()}"


def remove_stale(target: Path) -> None:
    """Remove temporaries of ``target`` left by killed builders; call only while holding its lock."""
    for p in target.parent.glob(f".{target.name}.tmp-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def publish_dir(tmp: Path, target: Path) -> None:
    """Make the finished folder ``tmp`` the cache ``target`` with one rename (a damaged ``target`` that is
    being rebuilt is moved aside first and deleted after)."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def file_record(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, plus shape and dtype for a ``.npy`` array."""
    rec: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    if path.suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        rec.update(shape=list(arr.shape), dtype=str(arr.dtype))
        del arr
    return rec


def check_file(path: Path, rec: dict[str, Any], level: str, rebuild: str) -> None:
    """Compare ``path`` with its record: size always, SHA-256 when ``level`` is "sha256".

    Raises:
        CacheError: the file is missing, has another size or other bytes (folder and ``rebuild`` named).
    """
    folder = path.parent

    def damaged(why: str) -> CacheError:
        return CacheError(f"damaged cache {folder}: {path.name} {why}; rebuild it with `{rebuild}`")

    if not path.is_file():
        raise damaged("is missing")
    size = path.stat().st_size
    if size != rec["bytes"]:
        raise damaged(f"is {size} bytes, its record says {rec['bytes']}")
    if level == "sha256" and file_sha256(path) != rec["sha256"]:
        raise damaged("does not match its recorded SHA-256 (same size, other bytes)")


def open_array(path: Path, rec: dict[str, Any], level: str, rebuild: str) -> np.ndarray:
    """Memory-map a recorded ``.npy`` after :func:`check_file`, and check its shape and dtype.

    Raises:
        CacheError: see :func:`check_file`; also a header that numpy cannot read or that disagrees.
    """
    check_file(path, rec, level, rebuild)
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:
        raise CacheError(
            f"damaged cache {path.parent}: {path.name} cannot be read ({e}); rebuild it with `{rebuild}`"
        ) from None
    if list(arr.shape) != list(rec["shape"]) or str(arr.dtype) != rec["dtype"]:
        raise CacheError(
            f"damaged cache {path.parent}: {path.name} is {arr.dtype}{list(arr.shape)}, its record says "
            f"{rec['dtype']}{rec['shape']}; rebuild it with `{rebuild}`"
        )
    return arr
