"""Strict resume: checkpoints load strictly except the frozen keys the model rebuilds; a corrupt one
restarts its fold and says so."""

from __future__ import annotations

import logging

import pytest
import torch
from test_train_loop import CFG, _batch, _clipset, _loss, _Net
from torch import nn

from mer.errors import ExitCode
from mer.zoo.train import CheckpointMismatchError, train_model


def _train(net, ckpt, epochs=3):
    cfg = CFG if epochs == CFG.epochs else type(CFG)(**{**CFG.__dict__, "epochs": epochs})
    return train_model(
        net, _clipset(), loss_fn=_loss, batch_fn=_batch, cfg=cfg, device=torch.device("cpu"), checkpoint=ckpt
    )


def test_corrupt_checkpoint_restarts_the_fold_and_says_so(tmp_path, caplog):
    ckpt = tmp_path / "checkpoint.pt"
    torch.manual_seed(0)
    _train(_Net(), ckpt, epochs=2)
    ckpt.write_bytes(ckpt.read_bytes()[:300])  # truncated
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="mer.train"):
        result = _train(_Net(), ckpt)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "is corrupt" in lines[0] and "restarts from its beginning" in lines[0]
    assert [h["epoch"] for h in result.history] == [0, 1, 2]  # every epoch trained again
    assert (tmp_path / "checkpoint.pt.corrupt").stat().st_size == 300
    # the restarted fold trains exactly as an uninterrupted one
    torch.manual_seed(0)
    fresh = _train(_Net(), tmp_path / "other.pt")
    assert [h["loss"] for h in result.history] == [h["loss"] for h in fresh.history]


def test_checkpoint_of_another_model_is_refused(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    _train(_Net(), ckpt, epochs=1)

    class Wider(_Net):
        def __init__(self):
            super().__init__()
            self.extra = nn.Linear(3, 3)  # a key the checkpoint lacks (and that is trained)

    with pytest.raises(
        CheckpointMismatchError, match=r"2 missing key\(s\) \[.extra.weight., .extra.bias.\]"
    ) as e:
        _train(Wider(), ckpt)
    assert e.value.exit_code == ExitCode.INTEGRITY


def test_frozen_keys_the_model_rebuilds_may_be_absent(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"

    class Frozen(_Net):
        def __init__(self):
            super().__init__()
            self.tower = nn.Linear(3, 3)
            self.tower.requires_grad_(False)  # rebuilt from its source, never saved

    _train(Frozen(), ckpt, epochs=1)
    assert not any(k.startswith("tower.") for k in torch.load(ckpt, weights_only=True)["model"])
    result = _train(Frozen(), ckpt, epochs=2)
    assert [h["epoch"] for h in result.history] == [0, 1]  # resumed at epoch 1, nothing refused
