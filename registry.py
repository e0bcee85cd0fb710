"""One registry class, used for datasets, protocols and models."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mer.errors import UsageError

T = TypeVar("T")


class RegistryError(UsageError, KeyError):
    """An unknown or duplicate name in a :class:`Registry`.

    ``KeyError`` wraps its message in quotes when printed; ``__str__`` is overridden so that the CLI
    shows the message as written.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A name → object table with decorator registration.

    Args:
        kind: What the registry holds ("model", "protocol", "dataset"), used in messages.

    Example:
        >>> MODELS: Registry[type] = Registry("model")
        >>> @MODELS.register("chance")
        ... class Chance: ...
        >>> MODELS.get("chance") is Chance
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; used bare or as a decorator.

        Raises:
            RegistryError: ``name`` is already taken.
        """

        def add(item: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add(obj) if obj is not None else add

    def get(self, name: str) -> T:
        """Look ``name`` up.

        Raises:
            RegistryError: unknown name; the message suggests close names and lists the valid ones.
        """
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """The error text for an unknown ``name``: a "did you mean" hint and every valid name."""
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        valid = ", ".join(sorted(self._items)) or "(none)"
        return f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {valid}"

    def list(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """``(name, object)`` pairs, sorted by name."""
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._items)
