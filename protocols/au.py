"""AU grammar: an AU cell of a coding sheet → structured :class:`~mer.protocols.sample.AU` records.

Minimal form for SynthME and CASME II-style cells (``1+2+L12``); the full grammar of the real sheets
(intensity, alternatives, uncertainty, free text) extends :func:`parse_au_cell` keeping its signature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mer.protocols.sample import AU

TOKEN = re.compile(r"^(?:AU)?([LRABT]?)(\d+)([A-E]?)$", re.IGNORECASE)


@dataclass
class AUParse:
    """The result of parsing one cell.

    Attributes:
        aus: AUs in ascending number order.
        warnings: Fragments that are not AUs, each quoted, never dropped silently.
    """

    aus: tuple[AU, ...]
    warnings: list[str] = field(default_factory=list)


def parse_au_cell(cell: object) -> AUParse:
    """Parse one AU cell; Excel integers (``12``, ``12.0``) are AUs too."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return AUParse(())
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = str(cell).strip()
    aus: list[AU] = []
    warnings: list[str] = []
    for token in filter(None, (t.strip() for t in text.split("+"))):
        m = TOKEN.match(token)
        if m is None:
            warnings.append(f"unparsed AU text {token!r}")
            continue
        aus.append(AU(int(m.group(2)), m.group(1).upper(), m.group(3).upper()))
    return AUParse(tuple(sorted(aus, key=lambda a: (a.number, a.side))), warnings)
