"""Small file helpers: the one atomic-write path of mer, content hashes.

Every file mer writes (run.json, fold CSVs, predictions, metrics, checkpoints, weights, artifacts,
leaderboard files, cache metadata) goes through :func:`atomic_path`: the bytes are written to a
temporary file in the target's folder, flushed to disk, and renamed over the target in one step, so a
reader (or a process killed mid-write) sees the old file or the new one, never half of one. A write that
fails because of the disk (full, read-only, no permission) is a :class:`WriteError` naming the file; the
target is left as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mer.errors import RunFailedError

#: errno values that mean "the storage refused", not "mer has a bug".
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG}


# Files made with mkstemp are 0600; mer's files get the usual mode the umask allows.
_UMASK = os.umask(0)
os.umask(_UMASK)


class WriteError(RunFailedError, OSError):
    """A file could not be written (disk full, read-only folder, no permission); nothing was replaced."""


def _storage_error(path: Path, exc: OSError) -> WriteError:
    why = os.strerror(exc.errno) if exc.errno else str(exc)
    return WriteError(
        f"cannot write {path}: {why} (errno {errno.errorcode.get(exc.errno, exc.errno)}); "
        "the file was left as it was"
    )


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def make_dirs(path: Path) -> Path:
    """``mkdir -p`` that reports a refusing storage as a :class:`WriteError` naming the folder."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno in STORAGE_ERRNOS:
            raise _storage_error(path, e) from e
        raise
    return path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``; when the block ends cleanly it replaces ``path`` atomically.

    Use it for writers that want a file name (``torch.save``, safetensors, ``savefig``)::

        with atomic_path(out) as tmp:
            torch.save(obj, tmp)

    On an exception the temporary file is removed and ``path`` is untouched.

    Raises:
        WriteError: the storage refused the write (ENOSPC, EROFS, EACCES...).
    """
    path = Path(path)
    make_dirs(path.parent)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        if e.errno in STORAGE_ERRNOS:
            raise _storage_error(path, e) from e
        raise
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in STORAGE_ERRNOS and not isinstance(e, WriteError):
            raise _storage_error(path, e) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_all(f: Any, data: bytes) -> None:
    """One place where mer's own bytes hit the disk (the fault tests make it fail like a full disk)."""
    f.write(data)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        _write_all(f, data)


def atomic_write_text(path: Path, text: str) -> None:
    """Text form of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any, length: int = 12) -> str:
    """A short hash of a JSON-serialisable object, independent of key order."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:length]
