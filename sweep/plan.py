"""What a sweep runs: a grid of :class:`~mer.protocols.runner.RunConfig` or the rows of a paper table."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from mer.errors import OptionValueError
from mer.protocols.protocol import PROTOCOLS
from mer.protocols.runner import RunConfig
from mer.zoo.api import MODELS


@dataclass(frozen=True)
class Grid:
    """A sweep's axes; every combination is one run.

    Attributes:
        models: Model names.
        protocols: Protocol names.
        sizes: Model sizes (None: each model's default).
        seeds: Run seeds.
        options: Model option → its values (``-o KEY=VALUE`` given twice with one key is an axis).
        prep: Preparation field (frames, size, ...) → its values, an axis in the same way.
        select: "last" or "oracle".
        folds: ``--folds`` subset for every run (None: all).
        save_weights: "none", "last" or "all".
    """

    models: tuple[str, ...]
    protocols: tuple[str, ...]
    sizes: tuple[str | None, ...] = (None,)
    seeds: tuple[int, ...] = (0,)
    options: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    prep: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    select: str = "last"
    folds: str | None = None
    save_weights: str = "none"


def parse_value(text: str) -> Any:
    """``-o`` value: JSON when it parses (numbers, booleans, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_axes(items: list[str] | None, flag: str) -> dict[str, tuple[Any, ...]]:
    """``KEY=VALUE`` items → key → values in the order given (a key given twice is a sweep axis).

    Raises:
        OptionValueError: an item without ``=``.
    """
    axes: dict[str, list[Any]] = {}
    for item in items or []:
        if "=" not in item:
            raise OptionValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        axes.setdefault(key.strip(), []).append(parse_value(value))
    return {k: tuple(v) for k, v in axes.items()}


def parse_options(items: list[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``KEY=VALUE`` items of one run (``mer bench run -o``); a key given twice keeps its last value.

    Raises:
        OptionValueError: an item without ``=``.
    """
    return {k: v[-1] for k, v in parse_axes(items, flag).items()}


def _combinations(axes: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(axes[k] for k in keys))]


def expand(grid: Grid) -> list[RunConfig]:
    """Every run of ``grid``, in axis order (protocol, model, size, options, preparation, seed).

    Raises:
        RegistryError: an unknown model or protocol (with the valid names).
        ValueError: a size a model does not come in.
        OptionValueError: a model whose task is not the protocol's.
    """
    runs = []
    for protocol, model, size in itertools.product(grid.protocols, grid.models, grid.sizes):
        spec, proto = MODELS.get(model), PROTOCOLS.get(protocol)
        spec.check_size(size)
        if spec.task != proto.task:
            raise OptionValueError(f"model {model} does {spec.task} but protocol {protocol} is {proto.task}")
        for options, prep, seed in itertools.product(
            _combinations(grid.options), _combinations(grid.prep), grid.seeds
        ):
            runs.append(
                RunConfig(
                    model=model,
                    protocol=protocol,
                    size=size,
                    seed=seed,
                    folds=grid.folds,
                    select=grid.select,
                    recipe=prep,
                    options=options,
                    save_weights=grid.save_weights,
                )
            )
    return runs


def table_rows(table: str) -> tuple[list[str], list[str]]:
    """The models (paper row order) and protocols of a paper ablation table (MER-CLIP Tables VIII–XI),
    as ``leaderboard/reported/ablations.csv`` maps each row to a registered model.

    Raises:
        OptionValueError: a table the file does not hold (the message lists those it does).
    """
    from mer.leaderboard.reported import ablation_rows

    rows = [r for r in ablation_rows() if r.table.upper() == table.upper()]
    if not rows:
        known = ", ".join(dict.fromkeys(r.table for r in ablation_rows()))
        raise OptionValueError(f"--table: no paper table {table!r}; tables: {known}")
    models = list(dict.fromkeys(r.model for r in sorted(rows, key=lambda r: r.row)))
    protocols = list(dict.fromkeys(r.protocol for r in rows))
    return models, protocols
