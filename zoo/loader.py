"""Prepared clips streamed from the memory-mapped cache ahead of the training step.

:class:`PrefetchingClips` stands in for a :class:`~mer.protocols.clipset.ClipSet` during one epoch. A
background thread reads the frames of the next ``depth`` planned batches out of the memory-mapped
store (the copy and its page faults run outside the GIL) into page-locked (pinned) host memory when
training on CUDA, so the host-to-device copy in the batch transform runs at full PCIe speed and the
disk read overlaps the previous step. Every other attribute is the wrapped ClipSet's, and a
``frames`` call that is not the planned batch reads directly, so any ``batch_fn`` works unchanged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mer.protocols.clipset import ClipSet

_DONE = object()


def read_frames(clips: ClipSet, idx: np.ndarray, pin_memory: bool) -> np.ndarray:
    """Clips ``idx`` as ``[n, T, H, W, 3]`` uint8, in pinned host memory when ``pin_memory``.

    The returned array views a pinned torch tensor and keeps it alive; ``torch.from_numpy`` on it gives
    a tensor over the same pinned pages.
    """
    rows = clips.rows[np.asarray(idx, dtype=np.int64)]
    shape = (len(rows), *clips.clip_shape)
    if pin_memory:
        out = torch.empty(shape, dtype=torch.uint8, pin_memory=True).numpy()
    else:
        out = np.empty(shape, dtype=clips.store.dtype)
    # One contiguous copy per clip from the memmap (fancy indexing would copy twice).
    for j, r in enumerate(rows):
        clips.read_clip(r, out[j])
    return out


class PrefetchingClips:
    """A ClipSet whose planned batches are read ahead by a background thread.

    Args:
        clips: The ClipSet to read from.
        batches: The index batches the training loop will ask for, in order.
        pin_memory: Read into pinned host memory (use on CUDA).
        depth: Batches read ahead (bounded, so memory stays at ``depth`` batches).

    Call :meth:`set_step` before the batch transform of each step; use as a context manager (or call
    :meth:`close`) so the thread stops when the epoch ends early.
    """

    def __init__(
        self, clips: ClipSet, batches: Sequence[np.ndarray], pin_memory: bool = False, depth: int = 2
    ) -> None:
        self._clips = clips
        self._batches = [np.asarray(b) for b in batches]
        self._pin = pin_memory and torch.cuda.is_available()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._pending: tuple[int, np.ndarray, Any] | None = None
        self._step: int | None = None
        self.hits = 0  # batches served from the read-ahead (for tests and progress)
        self._thread = threading.Thread(target=self._produce, name="mer-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for step, idx in enumerate(self._batches):
                if self._stop.is_set() or not self._put(
                    (step, idx, read_frames(self._clips, idx, self._pin))
                ):
                    return
        except BaseException as exc:  # surfaced in the training thread by frames()
            self._put((-1, None, exc))
        self._put(_DONE)

    def set_step(self, step: int) -> None:
        """The training loop is about to build the batch of planned step ``step``."""
        self._step = step

    def _take(self, step: int) -> tuple[int, np.ndarray, Any] | None:
        while True:
            item = self._pending if self._pending is not None else self._queue.get()
            self._pending = None
            if item is _DONE:
                self._pending = item
                return None
            if item[0] == -1:
                raise item[2]
            if item[0] < step:  # a step whose batch_fn never asked for frames: drop its read
                continue
            if item[0] > step:
                self._pending = item
                return None
            return item

    def frames(self, idx: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The planned batch from the read-ahead, or a direct read for anything else."""
        if idx is not None and self._step is not None:
            step, self._step = self._step, None
            item = self._take(step)
            if item is not None and np.array_equal(item[1], np.asarray(idx)):
                self.hits += 1
                return item[2]
        return self._clips.frames(idx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clips, name)

    def __len__(self) -> int:
        return len(self._clips)

    def close(self) -> None:
        """Stop the reader thread and drop what it read."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)

    def __enter__(self) -> PrefetchingClips:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
