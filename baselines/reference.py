"""Reference rows every table shows: ``chance`` (stratified random) and ``majority``."""

from __future__ import annotations

from typing import Any

import numpy as np

from mer.protocols.clipset import ClipSet
from mer.zoo.api import ModelSpec, Predictions, register_model


class _PriorModel:
    """Shared part: the training class prior."""

    def __init__(self, num_classes: int, seed: int = 0) -> None:
        self.num_classes = num_classes
        self.seed = seed
        self.prior = np.full(num_classes, 1.0 / num_classes)

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        counts = np.bincount(train.labels, minlength=self.num_classes).astype(float)
        self.prior = counts / counts.sum() if counts.sum() else self.prior

    def state_dict(self) -> dict[str, Any]:
        return {"prior": self.prior.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the training prior saved by :meth:`state_dict`."""
        prior = np.asarray(state["prior"], dtype=np.float64)
        if prior.shape != (self.num_classes,):
            raise ValueError(f"prior has shape {prior.shape}, the model has {self.num_classes} classes")
        self.prior = prior


class Chance(_PriorModel):
    """Draws each label at random with the training class frequencies (seeded)."""

    def predict(self, test: ClipSet) -> Predictions:
        rng = np.random.default_rng(self.seed)
        labels = rng.choice(self.num_classes, size=len(test), p=self.prior)
        return Predictions(labels, np.tile(self.prior, (len(test), 1)))


class Majority(_PriorModel):
    """Always predicts the most frequent training class."""

    def predict(self, test: ClipSet) -> Predictions:
        label = int(np.argmax(self.prior))
        probs = np.zeros((len(test), self.num_classes))
        probs[:, label] = 1.0
        return Predictions(np.full(len(test), label), probs)


def _reference(cls):
    def build(num_classes: int, size: str = "base", seed: int = 0):
        return cls(num_classes, seed)  # no options: ``-o`` anything is refused, not ignored

    return build


# Reference models read no pixels; a tiny recipe keeps their preparation cheap.
_TINY = {"base": {"frames": 4, "size": 32}}
register_model(
    ModelSpec(
        "chance",
        _reference(Chance),
        ("base",),
        "stratified random labels (training prior)",
        family="reference",
        recipe=_TINY,
    )
)
register_model(
    ModelSpec(
        "majority",
        _reference(Majority),
        ("base",),
        "most frequent training class",
        family="reference",
        recipe=_TINY,
    )
)
