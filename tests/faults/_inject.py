"""Run the ``mer`` command line with one fault armed (for tests/faults): ``python _inject.py ARGS...``.

``MER_FAULT`` says which fault, ``MER_FAULT_MARKER`` is a file created when the fault point is reached
(the test then SIGKILLs this process, or lets it go on):

- ``slow-prepare``: each clip of a preparation takes 0.15 s longer (so that a kill lands inside it);
- ``slow-fold``: each fold takes 1 s longer;
- ``hang-write:TEXT``: the first write through mer's atomic-write helper whose temporary file name
  contains TEXT writes half its bytes, then hangs;
- ``hang-save:N``: the N-th ``torch.save`` (a checkpoint) writes half its bytes, then hangs.

It also registers ``fault-net``, a deep model small enough to train a fold in a second: a linear layer on
the mean frame, trained by mer's shared loop with a per-fold checkpoint (like MER-CLIP).
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

MARKER = Path(os.environ.get("MER_FAULT_MARKER", os.devnull))
FAULT = os.environ.get("MER_FAULT", "")


def _reached() -> None:
    MARKER.touch()


def _hang() -> None:
    _reached()
    while True:
        time.sleep(60)


def build_fault_net(num_classes: int, size: str = "base", seed: int = 0, work_dir=None, epochs: int = 2):
    from mer.zoo.deep import DeepEstimator
    from mer.zoo.train import TrainConfig

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes))

    def batch_fn(clips, idx, train, device):
        frames = torch.as_tensor(clips.frames(idx)).float().div(255).mean(1)  # [n, H, W, 3]
        return {"video": frames.permute(0, 3, 1, 2), "label": torch.as_tensor(clips.labels[idx]).long()}

    def loss_fn(model, batch, epoch):
        loss = nn.functional.cross_entropy(model(batch["video"]), batch["label"])
        return loss, {}

    cfg = TrainConfig(epochs=int(epochs), batch_size=4, lr=1e-2, warmup_epochs=0, amp=False, prefetch=0)
    return DeepEstimator(
        net, loss_fn=loss_fn, batch_fn=batch_fn, config=cfg, seed=seed, work_dir=work_dir, name="fault-net"
    )


def arm() -> None:
    from mer.registrations import load_all
    from mer.zoo.api import MODELS, ModelSpec

    load_all()
    MODELS.register(
        "fault-net",
        ModelSpec(
            "fault-net", build_fault_net, ("base",), family="deep", recipe={"base": {"frames": 4, "size": 8}}
        ),
    )
    if FAULT == "slow-prepare":
        import mer.protocols.prepare as prepare

        real = prepare._prepare_one

        def slow(*a, **k):
            _reached()
            time.sleep(0.15)
            return real(*a, **k)

        prepare._prepare_one = slow
    elif FAULT == "slow-fold":
        import mer.protocols.runner as runner

        real_fold = runner._fit_predict_fold

        def slow_fold(*a, **k):
            out = real_fold(*a, **k)
            _reached()
            time.sleep(1.0)
            return out

        runner._fit_predict_fold = slow_fold
    elif FAULT.startswith("hang-write:"):
        import mer.protocols.io as mio

        text = FAULT.split(":", 1)[1]
        real_write = mio._write_all

        def write(f, data):
            if text in Path(f.name).name:
                real_write(f, data[: len(data) // 2])
                f.flush()
                _hang()
            real_write(f, data)

        mio._write_all = write
    elif FAULT.startswith("hang-save:"):
        n = int(FAULT.split(":", 1)[1])
        real_save = torch.save
        calls = [0]

        def save(obj, f, *a, **k):
            calls[0] += 1
            if calls[0] == n:
                buf = io.BytesIO()
                real_save(obj, buf)
                with open(f, "wb") as out:
                    out.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                _hang()
            return real_save(obj, f, *a, **k)

        torch.save = save
    elif FAULT:
        raise SystemExit(f"unknown MER_FAULT {FAULT!r}")


if __name__ == "__main__":
    arm()
    from mer.cli import main

    sys.argv = ["mer", *sys.argv[1:]]
    main()
