"""A deep estimator that trains and predicts with a fixed number of torch threads on a CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from mer.protocols.clipset import ClipSet
from mer.zoo.api import Predictions
from mer.zoo.deep import DeepEstimator


class ThreadLimitedEstimator(DeepEstimator):
    """A :class:`DeepEstimator` that runs with ``cpu_threads`` torch threads on a CPU (restored after).

    Small networks are overhead-bound: on a busy machine intra-op threads spin-wait and make a step
    slower than one thread would (measured on the flow CNNs and the MicroAU-CLIP towers).
    """

    cpu_threads: int | None = None

    @contextmanager
    def _threads(self) -> Iterator[None]:
        if self.device.type != "cpu" or not self.cpu_threads:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.cpu_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        with self._threads():
            super().fit(train, val)

    def predict(self, test: ClipSet) -> Predictions:
        with self._threads():
            return super().predict(test)
