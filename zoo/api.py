"""The uniform model API: every model, deep or classical, is an :class:`Estimator`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mer.errors import OptionValueError, UsageError
from mer.protocols.clipset import ClipSet
from mer.registry import Registry


@dataclass
class Predictions:
    """A model's output on a :class:`ClipSet`.

    Attributes:
        labels: Predicted class index per clip ``[N]`` (``[N, K]`` 0/1 for AU detection).
        probs: Class probabilities ``[N, C]`` (rows sum to 1), or per-AU probabilities ``[N, K]``.
        extras: Optional model-specific outputs (features for t-SNE, AU text matches...).
    """

    labels: np.ndarray
    probs: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Estimator(Protocol):
    """What the runner needs from a model."""

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        """Train on ``train``; ``val`` (never the test fold unless ``--select oracle``) may steer
        model selection."""

    def predict(self, test: ClipSet) -> Predictions:
        """Predict every clip of ``test``."""

    def state_dict(self) -> dict[str, Any]:
        """Tensors / arrays that reproduce the trained model."""


@dataclass
class ModelPlan:
    """What a model will do with its options under one protocol and size, resolved without building it
    (``mer bench run --dry-run``; recorded in run.json).

    Attributes:
        preparation: What the model's recipe asks of preparation (a layer of the recipe resolution).
        training: Resolved training values (LR, batch, epochs, augmentation, losses...), JSON-ready.
        init: The starting weights: value, file, SHA-256 (:func:`mer.zoo.init.describe_init`).
        notes: Anything that differs from what was asked (also printed).
    """

    preparation: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    init: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        name: Registry key ("merclip", "lbptop-svm", "merclip-no-align").
        build: ``build(num_classes=..., size=..., seed=..., **options) -> Estimator``.
        sizes: Sizes it comes in; the first is the default ("base" = the paper's).
        description: One line for ``mer models list``.
        family: "classical", "deep", "reference" (chance/majority).
        recipe: Size → preparation overrides (frames, size) the model expects.
        task: "emotion" or "au".
        inputs: "frames" or "flow" (what preparation must provide).
        reconstruction: True when the method is rebuilt from an abstract (shown in tables and cards).
        plan: ``plan(size=..., protocol=..., options=...) -> ModelPlan``: the resolved recipe without
            building (None: the model has no recipe beyond its options).
        option_fields: For a builder that takes ``**options`` into a dataclass, that dataclass or an
            instance of it holding the model's defaults (its fields are the model's ``-o`` options:
            :func:`mer.zoo.options.option_schema`).
    """

    name: str
    build: Callable[..., Estimator]
    sizes: tuple[str, ...] = ("base",)
    description: str = ""
    family: str = "deep"
    recipe: dict[str, dict[str, Any]] = field(default_factory=dict)
    task: str = "emotion"
    inputs: str = "frames"
    reconstruction: bool = False
    plan: Callable[..., ModelPlan] | None = None
    option_fields: Any = None

    @property
    def default_size(self) -> str:
        return self.sizes[0]

    def check_size(self, size: str | None) -> str:
        size = size or self.default_size
        if size not in self.sizes:
            raise OptionValueError(f"model {self.name} comes in sizes {', '.join(self.sizes)}, not {size!r}")
        return size


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS`."""
    MODELS.register(spec.name, spec)
    return spec


class UnknownOptionError(UsageError, TypeError):
    """A model builder was given an option (``-o KEY=VALUE``) it does not have."""


def refuse_unknown_options(name: str, unknown: Any) -> None:
    """Raise :class:`UnknownOptionError` naming ``unknown`` (option names) for model ``name``, if any."""
    if unknown:
        raise UnknownOptionError(f"{name}: unknown option(s) {', '.join(sorted(unknown))}")
