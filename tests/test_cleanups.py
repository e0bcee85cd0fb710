"""Issue 16 point 9: names that say what things are, one Registry for task hooks."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from mer.protocols.clipset import ClipSet
from mer.zoo.threads import ThreadLimitedEstimator


class _Probe(nn.Module):
    """Records the torch thread count it runs under."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.seen: list[int] = []

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        return self.fc(x)


def test_thread_limited_estimator_trains_with_its_threads_and_restores_them():
    probe = _Probe()
    clips = ClipSet(
        store=np.zeros((4, 1, 1, 1, 3), np.uint8),
        rows=np.arange(4),
        samples=[None] * 4,
        labels=np.array([0, 1, 0, 1]),
        class_names=("a", "b"),
    )

    def batch_fn(c, idx, train, device):
        return {"video": torch.ones(len(idx), 2), "label": torch.as_tensor(c.labels[idx])}

    def loss_fn(net, batch, epoch):
        return nn.functional.cross_entropy(net(batch["video"]), batch["label"]), {}

    from mer.zoo.train import TrainConfig

    est = ThreadLimitedEstimator(
        probe,
        loss_fn=loss_fn,
        batch_fn=batch_fn,
        config=TrainConfig(epochs=1, batch_size=2, warmup_epochs=0),
        device="cpu",
    )
    est.cpu_threads = 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        est.fit(clips)
        est.predict(clips)
        assert probe.seen and set(probe.seen) == {1}
        assert torch.get_num_threads() == 2  # restored after fit and predict
    finally:
        torch.set_num_threads(before)


def test_task_hooks_are_one_registry():
    from mer.protocols import au_protocols  # noqa: F401  (registers "au")
    from mer.protocols.runner import TASKS
    from mer.registry import Registry, RegistryError

    assert isinstance(TASKS, Registry) and {"au", "emotion"} <= set(TASKS)
    with pytest.raises(RegistryError, match="already registered"):
        TASKS.register("au", TASKS.get("au"))


@pytest.mark.parametrize("module", ["mer.catalog", "mer.baselines.microau_clip.estimator"])
def test_old_names_are_gone(module):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(module)
    assert not hasattr(importlib.import_module("mer.zoo.distributed"), "shard")
    assert not hasattr(importlib.import_module("mer.baselines.flow_common"), "FlowEstimator")
