"""Watching a fold train: its epochs as JSON lines (and, when asked, TensorBoard events).

The runner opens an :class:`EpochLog` around a fold's ``fit`` with :func:`epoch_log`; the shared training
loop calls :func:`log_epoch` after each epoch. Models know nothing about it, and a fold trained outside a
run (a test, a notebook) logs nothing.

``folds/fold_NNN.epochs.jsonl`` holds one row per finished epoch: ``epoch``, ``epochs`` (the total),
``loss`` (mean train loss), ``lr``, ``samples_per_s``, the model's loss terms and loss weights (MER-CLIP:
``clip``, ``cls``, ``w_clip``, ``w_cls``) and ``time``. The file is rewritten atomically from the
training history after every epoch, so that it always matches the fold's checkpoint: a fold resumed
after a kill neither loses nor repeats rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mer.protocols.io import atomic_write_text


@dataclass
class EpochLog:
    """Where one fold's epochs go.

    Attributes:
        jsonl: The JSON-lines file, rewritten after each epoch.
        tensorboard: Folder of TensorBoard event files; None: no events.
    """

    jsonl: Path
    tensorboard: Path | None = None
    _writer: Any = field(default=None, repr=False, compare=False)

    def write(self, history: list[dict[str, float]], epochs: int) -> None:
        """Store every epoch so far; the last row also goes to TensorBoard."""
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        times = {r["epoch"]: r.get("time") for r in read_epochs(self.jsonl)}  # rows already written
        rows = [{**r, "epoch": int(r["epoch"]), "epochs": epochs} for r in history]
        for r in rows:
            r["time"] = times.get(r["epoch"]) or now
        atomic_write_text(self.jsonl, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        if self.tensorboard is not None:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.tensorboard))
            last = rows[-1]
            for key, value in last.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "epochs"):
                    self._writer.add_scalar(f"train/{key}", value, last["epoch"])
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


_CURRENT: contextvars.ContextVar[EpochLog | None] = contextvars.ContextVar("mer_epoch_log", default=None)


@contextlib.contextmanager
def epoch_log(log: EpochLog | None) -> Iterator[None]:
    """Send the epochs trained inside the block to ``log`` (None: nowhere)."""
    token = _CURRENT.set(log)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        if log is not None:
            log.close()


def log_epoch(history: list[dict[str, float]], epochs: int) -> None:
    """Called by the training loop after each epoch with the whole history (resumed epochs included)."""
    log = _CURRENT.get()
    if log is not None and history:
        log.write(history, epochs)


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The rows of an ``epochs.jsonl`` file ([] when it does not exist)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
