"""Loads every built-in dataset, protocol and model into the registries.

Registration happens at import time of each module; importing this module (the CLI and the runner do)
makes every name available. Library users who build their own registries need not import it.
"""

from __future__ import annotations

import importlib

_MODULES = (
    "mer.protocols.synthme",
    "mer.protocols.builtin",
    "mer.protocols.real",
    "mer.protocols.au_protocols",
    "mer.baselines",
    "mer.merclip",
)

_loaded = False


def load_all() -> None:
    """Import every module that registers something (once)."""
    global _loaded
    if _loaded:
        return
    for name in _MODULES:
        importlib.import_module(name)
    _loaded = True
