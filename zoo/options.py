"""Each model's ``-o KEY=VALUE`` options: name, type, default, range and help, checked before a run starts.

The schema is read from the model's builder (its keyword parameters, their annotations, defaults and
``Args:`` docstring) and, for builders that take ``**options`` into a dataclass (LBP-TOP, the flow
CNNs), from that dataclass (``ModelSpec.option_fields``). Ranges are declared once per option name in
:data:`LIMITS`, since one name means one thing across models (``epochs`` is a positive count
everywhere). ``mer models info NAME`` prints the schema; :func:`check_options` refuses a wrong type,
an out-of-range value or an unknown key with one line (a usage error, exit code 2).
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from mer.errors import OptionValueError
from mer.zoo.api import ModelSpec, refuse_unknown_options

# Builder parameters the runner fills in itself (not user options).
RUNNER_SUPPLIED = frozenset({"num_classes", "size", "seed", "name", "variant", "protocol", "self"})


@dataclass(frozen=True)
class Limit:
    """Type and range of one option name: ``minimum <= value <= maximum``, or one of ``choices``."""

    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    type: str = "float"


# Ranges by option name. Maximums are sanity bounds that catch a typo (``epochs=1e9``), not advice.
LIMITS: dict[str, Limit] = {
    "epochs": Limit(1, 100_000, type="int"),
    "batch_size": Limit(1, 1 << 16, type="int"),
    "eval_batch_size": Limit(1, 1 << 16, type="int"),
    "batch": Limit(1, 1 << 16, type="int"),
    "lr": Limit(0, 10),
    "weight_decay": Limit(0, 10),
    "label_smoothing": Limit(0, 1),
    "cpu_threads": Limit(1, 4096, type="int"),
    "grid": Limit(1, 64, type="int"),
    "radius": Limit(1, 16, type="int"),
    "c": Limit(0, 1e6),
    "recipe": Limit(choices=("paper", "official"), type="str"),
    "planes": Limit(choices=("top", "apex"), type="str"),
    "scorer": Limit(choices=("rule", "prompts"), type="str"),
}


@dataclass(frozen=True)
class OptionSpec:
    """One option of one model.

    Attributes:
        name: The KEY of ``-o KEY=VALUE``.
        type: "int", "float", "bool", "str" or "any".
        default: The value used when the option is not given (None: the model decides).
        nullable: ``null`` is accepted.
        limit: Its range or choices (None: any value of the type).
        help: One line from the builder's docstring.
    """

    name: str
    type: str
    default: Any
    nullable: bool
    limit: Limit | None
    help: str

    def describe_range(self) -> str:
        """``1..100000``, ``paper | official``, ``true | false`` or ``""``."""
        if self.type == "bool":
            return "true | false"
        if self.limit is None:
            return ""
        if self.limit.choices is not None:
            return " | ".join(map(str, self.limit.choices))
        lo = "" if self.limit.minimum is None else f"{self.limit.minimum:g}"
        hi = "" if self.limit.maximum is None else f"{self.limit.maximum:g}"
        return f"{lo}..{hi}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``mer models info NAME --json``)."""
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default if _jsonable(self.default) else repr(self.default),
            "nullable": self.nullable,
            "range": self.describe_range() or None,
            "help": self.help,
        }


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _kind(annotation: Any) -> tuple[str, bool]:
    """(type name, nullable) of a resolved annotation."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any", True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        nullable = type(None) in args
        kinds = {_kind(a)[0] for a in args if a is not type(None)}
        if kinds <= {"str"} or kinds == {"str", "any"}:
            return "str", nullable
        return (kinds.pop() if len(kinds) == 1 else "any"), nullable
    for t, n in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (Path, "str")):
        if annotation is t:
            return n, False
    return "any", False


def _doc_lines(obj: Any, section: str) -> dict[str, str]:
    """``name → text`` of a Google-style ``Args:`` / ``Attributes:`` section (continuations joined)."""
    doc = inspect.getdoc(obj) or ""
    out: dict[str, str] = {}
    inside, last = False, None
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Attributes:"):
            inside, last = line.strip() == section, None
            continue
        m = re.match(r"^ {4}(\w+)(?: \([^)]*\))?: (.*)$", line)
        if inside and m:
            last = m.group(1)
            out[last] = m.group(2).strip()
        elif inside and last and line.startswith(" " * 8):
            out[last] += " " + line.strip()
        elif inside and line and not line.startswith(" "):
            inside, last = False, None
    return out


def _unwrap(build: Any) -> Any:
    while isinstance(build, functools.partial):
        build = build.func
    return build


def open_schema(spec: ModelSpec) -> bool:
    """True when the builder takes ``**options`` that no dataclass describes: names beyond its schema
    are then left for the builder to accept or refuse."""
    params = inspect.signature(spec.build).parameters.values()
    return spec.option_fields is None and any(p.kind == p.VAR_KEYWORD for p in params)


def option_schema(spec: ModelSpec) -> list[OptionSpec]:
    """Every option ``spec``'s builder accepts, in declaration order."""
    out: dict[str, OptionSpec] = {}
    func = _unwrap(spec.build)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # an annotation that does not resolve: types unknown, names still listed
        hints = {}
    helps = _doc_lines(func, "Args:")
    bound = spec.build.keywords if isinstance(spec.build, functools.partial) else {}
    for p in inspect.signature(spec.build).parameters.values():
        if p.name in RUNNER_SUPPLIED or p.name in bound or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        kind, nullable = _kind(hints.get(p.name, p.annotation))
        default = None if p.default is p.empty else p.default
        out[p.name] = OptionSpec(
            p.name, kind, default, nullable or default is None, LIMITS.get(p.name), helps.get(p.name, "")
        )
    holder = getattr(spec, "option_fields", None)
    if holder is not None and is_dataclass(holder):
        cls = holder if isinstance(holder, type) else type(holder)
        hints = typing.get_type_hints(cls)
        helps = _doc_lines(cls, "Attributes:")
        # A dataclass may name the values its text options take (e.g. a model's own recipe names).
        choices = getattr(cls, "CHOICES", {})
        for f in fields(holder):
            if f.name in out or f.name in RUNNER_SUPPLIED:
                continue
            kind, nullable = _kind(hints.get(f.name, Any))
            default = f.default if holder is cls else getattr(holder, f.name)
            limit = Limit(choices=tuple(choices[f.name])) if f.name in choices else LIMITS.get(f.name)
            out[f.name] = OptionSpec(f.name, kind, default, nullable, limit, helps.get(f.name, ""))
    return list(out.values())


def _check_value(model: str, opt: OptionSpec, value: Any) -> None:
    where = f"{model}: -o {opt.name}={value!r}"
    if value is None:
        if not opt.nullable:
            raise OptionValueError(f"{where}: a value is needed ({opt.type})")
        return
    if opt.type == "bool" and not isinstance(value, bool):
        raise OptionValueError(f"{where}: must be true or false")
    if opt.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise OptionValueError(f"{where}: must be a whole number")
    if opt.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise OptionValueError(f"{where}: must be a number")
    if opt.type == "str" and not isinstance(value, str):
        raise OptionValueError(f"{where}: must be text")
    lim = opt.limit
    if lim is None:
        return
    if lim.choices is not None and value not in lim.choices:
        raise OptionValueError(f"{where}: must be one of {', '.join(map(str, lim.choices))}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or (lim.minimum is not None and value < lim.minimum):
            raise OptionValueError(f"{where}: must be in {opt.describe_range()}")
        if lim.maximum is not None and value > lim.maximum:
            raise OptionValueError(f"{where}: must be in {opt.describe_range()}")
        if opt.name in ("lr",) and value <= 0:
            raise OptionValueError(f"{where}: must be greater than 0")


def check_options(spec: ModelSpec, options: dict[str, Any]) -> None:
    """Refuse unknown keys, values of the wrong type and values out of range (nothing is converted).

    Raises:
        UnknownOptionError: a key the model does not take.
        OptionValueError: a value of the wrong type or out of range (the message names the option,
            the value and what is accepted).
    """
    schema = {o.name: o for o in option_schema(spec)}
    if not open_schema(spec):
        refuse_unknown_options(spec.name, set(options) - set(schema))
    for key, value in options.items():
        opt = schema.get(key)
        if opt is None and key in LIMITS:  # an open builder: the name's usual type and range still hold
            lim = LIMITS[key]
            opt = OptionSpec(key, lim.type, None, True, lim, "")
        if opt is not None:
            _check_value(spec.name, opt, value)


def model_record(spec: ModelSpec) -> dict[str, Any]:
    """One row of ``mer models list``."""
    return {
        "name": spec.name,
        "sizes": list(spec.sizes),
        "family": spec.family,
        "task": spec.task,
        "inputs": spec.inputs,
        "reconstruction": spec.reconstruction,
        "description": spec.description + (" (reconstruction)" if spec.reconstruction else ""),
    }


def model_info(name: str) -> dict[str, Any]:
    """What ``mer models info NAME`` shows: the model's record, preparation per size and option schema.

    Raises:
        RegistryError: unknown model.
    """
    from mer.zoo.api import MODELS

    spec = MODELS.get(name)
    return {
        **model_record(spec),
        "default_size": spec.default_size,
        "preparation": {size: dict(spec.recipe.get(size, {})) for size in spec.sizes},
        "options": [o.to_dict() for o in option_schema(spec)],
    }
