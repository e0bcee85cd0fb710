"""The records every dataset parser yields: :class:`AU` and :class:`Sample`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mer.errors import InputError


@dataclass(frozen=True)
class AU:
    """One coded action unit of a sample.

    Attributes:
        number: FACS AU number (12 for AU12).
        side: "" (bilateral / not stated), "L", "R", "A" (asymmetric), "T" (top) or "B" (bottom).
        intensity: "" or a FACS intensity letter "A".."E".
        uncertain: The coder marked it as possibly present.
        alternatives: Other AUs the coder gave in its place (``R12/R14``, ``R6 or R12``); the
            sample shows this AU *or* one of these.
    """

    number: int
    side: str = ""
    intensity: str = ""
    uncertain: bool = False
    alternatives: tuple[AU, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"number": self.number}
        if self.side:
            d["side"] = self.side
        if self.intensity:
            d["intensity"] = self.intensity
        if self.uncertain:
            d["uncertain"] = True
        if self.alternatives:
            d["alternatives"] = [a.to_dict() for a in self.alternatives]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AU:
        return cls(
            number=int(d["number"]),
            side=d.get("side", ""),
            intensity=d.get("intensity", ""),
            uncertain=bool(d.get("uncertain", False)),
            alternatives=tuple(cls.from_dict(a) for a in d.get("alternatives", ())),
        )


def aus_to_json(aus: tuple[AU, ...]) -> str:
    """Serialise AUs for the prepared index table."""
    return json.dumps([a.to_dict() for a in aus], separators=(",", ":"))


def aus_from_json(text: str) -> tuple[AU, ...]:
    """Inverse of :func:`aus_to_json`; an empty cell is no AU."""
    if not isinstance(text, str) or not text.strip():
        return ()
    return tuple(AU.from_dict(d) for d in json.loads(text))


@dataclass(frozen=True)
class Sample:
    """One annotated micro-expression sample, as read from a dataset's sheet.

    Frame numbers are the dataset's own (``img46.jpg`` is frame 46); a layout maps them to files.

    Attributes:
        dataset: Registry name of the dataset ("casme2", "synthme", ...).
        subject: Subject id as text, leading zeros kept ("006", "sub01").
        sample_id: Unique key of the sample inside its dataset.
        source: Frame folder or video file, relative to the dataset root.
        onset: First frame number of the movement.
        apex: Apex frame number, or None when the sheet does not give one.
        offset: Last frame number of the movement.
        emotion: Canonical lower-case emotion ("happiness", "others", ...).
        aus: Parsed action units.
        au_text: The AU cell exactly as written in the sheet.
        row: 1-based row of the sheet this sample came from (for error messages).
        extras: Dataset-specific fields (objective class, DFME split, ...).
    """

    dataset: str
    subject: str
    sample_id: str
    source: str
    onset: int
    apex: int | None
    offset: int
    emotion: str
    aus: tuple[AU, ...] = ()
    au_text: str = ""
    row: int | None = None
    extras: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_row(self) -> dict[str, Any]:
        """A flat dict for the prepared index table."""
        d = asdict(self)
        d["aus"] = aus_to_json(self.aus)
        d["apex"] = -1 if self.apex is None else self.apex
        d["row"] = -1 if self.row is None else self.row
        d["extras"] = json.dumps(self.extras, sort_keys=True, default=str)
        return d

    @classmethod
    def from_row(cls, d: dict[str, Any]) -> Sample:
        """Inverse of :meth:`to_row`."""
        apex = int(d["apex"])
        row = int(d["row"])
        return cls(
            dataset=str(d["dataset"]),
            subject=str(d["subject"]),
            sample_id=str(d["sample_id"]),
            source=str(d["source"]),
            onset=int(d["onset"]),
            apex=None if apex < 0 else apex,
            offset=int(d["offset"]),
            emotion=str(d["emotion"]),
            aus=aus_from_json(d.get("aus", "")),
            au_text="" if d.get("au_text") is None else str(d.get("au_text", "")),
            row=None if row < 0 else row,
            extras=json.loads(d["extras"]) if isinstance(d.get("extras"), str) and d["extras"] else {},
        )


@dataclass(frozen=True)
class ValidationIssue:
    """One odd row of an annotation sheet.

    Attributes:
        row: 1-based sheet row (None when not tied to a row).
        sample: Sample id, when known.
        field: Column or field concerned.
        problem: Human-readable description.
        fatal: True when the sample cannot be used at all.
    """

    row: int | None
    sample: str
    field: str
    problem: str
    fatal: bool = False

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "sheet"
        return f"{where} ({self.sample or '?'}), {self.field}: {self.problem}"


class AnnotationError(InputError, ValueError):
    """A sheet that cannot be read, naming the file, row and field (bad input: exit code 3)."""
