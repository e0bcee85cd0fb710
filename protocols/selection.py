"""What a protocol's class map leaves out of a dataset, checked before a run starts.

A protocol drops samples on purpose (the 3-class tasks drop "others"), but a sample whose emotion is
not a known word (a typo such as ``happyness``, a private label such as ``grumpy``) is dropped by
accident, and a class left with no sample makes the scores meaningless. Both stop ``mer bench run``
unless ``--allow-dropped`` is given, which the run then records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mer.errors import InputError
from mer.protocols.emotions import KNOWN
from mer.protocols.protocol import Protocol
from mer.protocols.sample import Sample


class DroppedSamplesError(InputError, ValueError):
    """A protocol would silently lose samples with unknown labels, or train with an empty class."""


@dataclass
class SelectionReport:
    """Samples a protocol cannot use by accident.

    Attributes:
        unknown: ``(sheet row, sample id, emotion)`` of samples dropped for an unknown emotion word.
        empty_classes: Protocol classes with no sample at all.
        kept: Samples the protocol uses.
    """

    unknown: list[tuple[int | None, str, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    kept: int = 0

    @property
    def clean(self) -> bool:
        return not self.unknown and not self.empty_classes

    def describe(self) -> str:
        """One line: what is dropped, with the first rows."""
        parts = []
        if self.unknown:
            words = Counter(e for _, _, e in self.unknown)
            rows = ", ".join(f"row {r} ({e})" for r, _, e in self.unknown[:5])
            more = f" and {len(self.unknown) - 5} more" if len(self.unknown) > 5 else ""
            parts.append(
                f"{len(self.unknown)} sample(s) dropped for an unknown emotion "
                f"({', '.join(f'{w!r} ×{n}' for w, n in words.most_common())}): {rows}{more}"
            )
        if self.empty_classes:
            parts.append(f"class(es) with no sample: {', '.join(self.empty_classes)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form recorded in run.json under ``dropped``."""
        return {
            "unknown_emotion": [{"row": r, "sample": s, "emotion": e} for r, s, e in self.unknown],
            "empty_classes": self.empty_classes,
            "kept": self.kept,
        }


def selection_report(protocol: Protocol, samples: Sequence[Sample]) -> SelectionReport:
    """Which of ``samples`` ``protocol`` drops for an unknown emotion, and which classes end up empty.

    AU protocols keep samples by their AUs, so their emotion words do not matter and their "classes"
    (AUs) are not checked here.
    """
    kept, labels = protocol.select(samples)
    report = SelectionReport(kept=len(kept))
    if protocol.task != "emotion":
        return report
    kept_ids = {s.sample_id for s in kept}
    report.unknown = [
        (s.row, s.sample_id, s.emotion)
        for s in samples
        if s.sample_id not in kept_ids and s.emotion not in KNOWN
    ]
    counts = Counter(int(x) for x in labels)
    report.empty_classes = [c for i, c in enumerate(protocol.classes) if counts.get(i, 0) == 0]
    return report


def check_selection(protocol: Protocol, samples: Sequence[Sample], allow_dropped: bool) -> SelectionReport:
    """:func:`selection_report`, raising unless it is clean or ``allow_dropped``.

    Raises:
        DroppedSamplesError: unknown emotions or an empty class, and ``allow_dropped`` is False.
    """
    report = selection_report(protocol, samples)
    if not report.clean and not allow_dropped:
        raise DroppedSamplesError(
            f"protocol {protocol.name}: {report.describe()}. Fix the sheet (`mer data stats` lists every "
            "row), or pass --allow-dropped to run without them (recorded in run.json)"
        )
    return report
