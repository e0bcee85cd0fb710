"""AU grammar: an AU cell of a coding sheet → structured :class:`~mer.protocols.sample.AU` records.

The grammar covers every AU cell of the CASME II, SAMM and CAS(ME)³ sheets:

- terms joined with ``+`` (spaces around it are ignored: ``L12 + 61``);
- a plain token ``[AU][side]number[intensity]``: side ``L``/``R`` (unilateral), ``A`` (asymmetric),
  ``T``/``B`` (top / bottom), intensity ``A``–``E`` (``A12B`` is asymmetric AU12 at intensity B);
- alternatives, with ``/`` (``4A/B`` = AU4 at A or B, ``A/L12`` = AU12 asymmetric or left,
  ``R12/R14``) or with `` or `` (``R14A or 17A or 24A``), optionally in parentheses
  (``(R6 or R12)+R15``): the first alternative is the AU, the others go in ``AU.alternatives``;
- ``ref(...)`` (SAMM: an AU the coder only refers to, which the MER-CLIP authors render as "might be
  present"): read as an *uncertain* AU and reported with a warning; a trailing ``?`` marks the same;
- anything else (``soft focus``) is kept as an ``unparsed`` warning, never dropped silently.

Excel integer cells (``12``, ``12.0``) are AUs too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from mer.protocols.sample import AU

TOKEN = re.compile(r"^(?:AU)?([LRABT]?)(\d+)([A-E]?)$", re.IGNORECASE)
_REF = re.compile(r"^ref\s*\((.*)\)$", re.IGNORECASE)
_OR = re.compile(r"\s+or\s+", re.IGNORECASE)
# A '/' fragment without a number: a side before the full token (A/L12) or an intensity after it (4A/B).
_SIDE_ONLY = re.compile(r"^[LRABT]$", re.IGNORECASE)
_INTENSITY_ONLY = re.compile(r"^[A-E]$", re.IGNORECASE)


@dataclass
class AUParse:
    """The result of parsing one cell.

    Attributes:
        aus: AUs in ascending number order (stable: equal numbers keep the sheet's order).
        warnings: Named notes on fragments that are not plain AUs (``"ref: ..."``, ``"unparsed: ..."``),
            each quoting the fragment; nothing is dropped silently.
        written: The same AUs in the order the sheet writes them (prompt builders follow it).
    """

    aus: tuple[AU, ...]
    warnings: list[str] = field(default_factory=list)
    written: tuple[AU, ...] = ()


class _Unparsed(ValueError):
    """A fragment that the grammar does not cover."""


def cell_text(cell: object) -> str:
    """An AU cell as text: None/NaN → "", Excel floats ``12.0`` → ``"12"``."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    return str(cell).strip()


def _split_top(text: str, sep: str = "+") -> list[str]:
    """Split on ``sep`` outside parentheses (``(R6 or R12)+R15`` → two terms)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _token(text: str) -> AU:
    """One plain token (``A12B``, ``AU4``, ``12?``)."""
    text = text.strip()
    uncertain = text.endswith("?")
    m = TOKEN.match(text.rstrip("?").strip())
    if m is None:
        raise _Unparsed(text)
    return AU(int(m.group(2)), m.group(1).upper(), m.group(3).upper(), uncertain)


def _slash_group(text: str) -> list[AU]:
    """``4A/B``, ``A/L12``, ``R12/R14`` → the alternatives, in written order."""
    parts = [p.strip() for p in text.split("/")]
    full = {i: _token(p) for i, p in enumerate(parts) if TOKEN.match(p.rstrip("?").strip())}
    if not full:
        raise _Unparsed(text)
    out: list[AU] = []
    for i, p in enumerate(parts):
        if i in full:
            out.append(full[i])
            continue
        after = [j for j in full if j > i]
        before = [j for j in full if j < i]
        if after and _SIDE_ONLY.match(p):  # "A/L12": the fragment replaces the side of the next token
            out.append(replace(full[after[0]], side=p.upper()))
        elif before and _INTENSITY_ONLY.match(p):  # "4A/B": the fragment replaces the intensity
            out.append(replace(full[before[-1]], intensity=p.upper()))
        else:
            raise _Unparsed(text)
    return out


def _alternatives(text: str) -> AU:
    """A term that may hold alternatives; the first one carries the others."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    options: list[AU] = []
    for piece in _OR.split(text):
        options.extend(_slash_group(piece))
    first, rest = options[0], tuple(options[1:])
    return replace(first, alternatives=rest) if rest else first


def parse_au_cell(cell: object) -> AUParse:
    """Parse one AU cell of a coding sheet.

    Args:
        cell: The cell as read (text, Excel integer or float, None/NaN for an empty cell).

    Returns:
        The AUs and the warnings for every fragment that is not a plain AU.

    Example:
        >>> p = parse_au_cell("(R6 or R12)+R15")
        >>> [(a.number, a.side, [b.number for b in a.alternatives]) for a in p.aus]
        [(6, 'R', [12]), (15, 'R', [])]
    """
    text = cell_text(cell)
    written: list[AU] = []
    warnings: list[str] = []
    for term in _split_top(text):
        if not term:
            continue
        ref = _REF.match(term)
        try:
            if ref:
                au = _alternatives(ref.group(1))
                written.append(replace(au, uncertain=True))
                warnings.append(f"ref: {term!r} read as uncertain AU {ref.group(1).strip()}")
            else:
                written.append(_alternatives(term))
        except _Unparsed:
            warnings.append(f"unparsed: {term!r} is not an AU")
    aus = tuple(sorted(written, key=lambda a: a.number))
    return AUParse(aus, warnings, tuple(written))


def format_au(au: AU) -> str:
    """The canonical text of one AU (``A12B``, ``R6 or R12``, ``ref(24)`` for an uncertain one)."""
    core = f"{au.side}{au.number}{au.intensity}"
    if au.alternatives:
        core = " or ".join([core, *(format_au(a) for a in au.alternatives)])
        core = f"({core})"
    return f"ref({core})" if au.uncertain else core


# FACS names of the action units (Ekman, Friesen & Hager 2002), as the datasets' text lists spell them.
FACS_NAMES: dict[int, str] = {
    1: "Inner Brow Raiser",
    2: "Outer Brow Raiser",
    4: "Brow Lowerer",
    5: "Upper Lid Raiser",
    6: "Cheek Raiser",
    7: "Lid Tightener",
    9: "Nose Wrinkler",
    10: "Upper Lip Raiser",
    11: "Nasolabial Deepener",
    12: "Lip Corner Puller",
    13: "Cheek Puffer",
    14: "Dimpler",
    15: "Lip Corner Depressor",
    16: "Lower Lip Depressor",
    17: "Chin Raiser",
    18: "Lip Pucker",
    20: "Lip Stretcher",
    21: "Neck Tightener",
    22: "Lip Funneler",
    23: "Lip Tightener",
    24: "Lip Presser",
    25: "Lips Part",
    26: "Jaw Drop",
    27: "Mouth Stretch",
    28: "Lip Suck",
    31: "Jaw Clencher",
    34: "Cheek Puff",
    38: "Nostril Dilator",
    39: "Nostril Compressor",
    41: "Lid Droop",
    42: "Slit",
    43: "Eyes Closed",
    44: "Squint",
    45: "Blink",
    46: "Wink",
    51: "Head Turn Left",
    52: "Head Turn Right",
    53: "Head Up",
    54: "Head Down",
    57: "Head Forward",
    58: "Head Back",
    61: "Eyes Turn Left",
    62: "Eyes Turn Right",
    63: "Eyes Up",
    64: "Eyes Down",
}
_BY_NAME = {v.lower(): k for k, v in FACS_NAMES.items()}
_SIDE_WORD = {"left": "L", "right": "R"}


def parse_facs_names(text: str) -> AUParse:
    """AUs from a FACS-name description (DFME's ``AUlabel_map_short.txt`` lines).

    ``"a combination of Inner Brow Raiser, Right Lip Corner Puller"`` → AU1, R12; ``... might be present``
    marks an uncertain AU; names not in :data:`FACS_NAMES` become ``unparsed`` warnings.
    """
    body = re.sub(r"^\s*a combination of\s+", "", text.strip(), flags=re.IGNORECASE)
    written: list[AU] = []
    warnings: list[str] = []
    for part in re.split(r",|\s+and\s+", body):
        part = part.strip()
        if not part:
            continue
        uncertain = part.lower().endswith("might be present")
        if uncertain:
            part = part[: -len("might be present")].strip()
        options = []
        for name in _OR.split(part):
            words = name.strip().split(" ", 1)
            side = _SIDE_WORD.get(words[0].lower(), "") if len(words) == 2 else ""
            key = (words[1] if side else name).strip().lower()
            if key not in _BY_NAME:
                options = []
                break
            options.append(AU(_BY_NAME[key], side, "", uncertain))
        if not options:
            warnings.append(f"unparsed: {part!r} is not a FACS name")
            continue
        written.append(
            replace(options[0], alternatives=tuple(options[1:])) if len(options) > 1 else options[0]
        )
    return AUParse(tuple(sorted(written, key=lambda a: a.number)), warnings, tuple(written))
