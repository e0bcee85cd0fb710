"""A NaN loss on one of two DDP ranks stops both ranks with a clear error; nobody waits forever."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from mer.errors import ExitCode, exit_code_of

TIMEOUT_S = 90


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from test_ddp import init_gloo
    from test_train_loop import _batch, _clipset, _Net

    from mer.zoo.train import TrainConfig, train_model

    init_gloo(rank, world, port)

    def loss(net, batch, epoch):
        value = torch.nn.functional.cross_entropy(net(batch["x"]), batch["y"])
        if rank == 1 and epoch == 1:  # this rank's shard turns NaN in the second epoch
            value = value * float("nan")
        return value, {}

    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-2, warmup_epochs=0, amp=False, prefetch=0)
    try:
        train_model(_Net(), _clipset(), loss_fn=loss, batch_fn=_batch, cfg=cfg, device=torch.device("cpu"))
        result = "finished"
    except Exception as e:  # noqa: BLE001 - the test reads what each rank raised
        result = f"{type(e).__name__}|{int(exit_code_of(e))}|{e}"
    with open(f"{out}.{rank}", "w") as f:
        f.write(result)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two spawned processes importing torch: ~15 s idle, a minute on a loaded box
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built")
def test_nan_on_one_ddp_rank_stops_both_ranks(tmp_path, fault_row):
    out = str(tmp_path / "rank")
    ctx = torch.multiprocessing.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=False)
    deadline = time.time() + TIMEOUT_S
    while not ctx.join(timeout=1):
        if time.time() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"DDP ranks still running after {TIMEOUT_S} s: a NaN on one rank hangs the other")
    results = [Path(f"{out}.{r}").read_text().split("|", 2) for r in range(2)]
    assert [r[0] for r in results] == ["NonFiniteLossError"] * 2
    assert "on another rank at epoch 1, step 0" in results[0][2]
    assert "(nan) on this rank at epoch 1, step 0" in results[1][2]
    assert int(results[1][1]) == ExitCode.RUN_FAILED
    fault_row(
        "NaN loss on 1 of 2 DDP ranks (gloo)",
        results[0][2].split(";")[0] + " (rank 0)",
        int(results[0][1]),
        True,
    )
