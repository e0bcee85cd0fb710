"""The dataset registry: how to parse each dataset's sheet and where its frames lie."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mer.errors import MissingInputError
from mer.protocols.sample import Sample, ValidationIssue
from mer.registry import Registry

ParseFn = Callable[[Path], "ParseResult"]


@dataclass
class ParseResult:
    """What a sheet parser returns.

    Attributes:
        samples: Every usable sample, in sheet order.
        issues: Every odd row found on the way (nothing is dropped silently); samples whose emotion
            is not a known word are added here on construction.
    """

    samples: list[Sample]
    issues: list[ValidationIssue]

    def __post_init__(self) -> None:
        # An emotion word no dataset uses ("grumpy", "happyness") would be dropped by every class map
        # without a word; every parser's result reports it here, with its sheet row.
        from mer.protocols.emotions import KNOWN

        flagged = {(i.row, i.sample) for i in self.issues if i.field == "emotion"}
        for s in self.samples:
            if s.emotion and s.emotion not in KNOWN and (s.row, s.sample_id) not in flagged:
                self.issues.append(
                    ValidationIssue(
                        s.row,
                        s.sample_id,
                        "emotion",
                        f"unknown emotion {s.emotion!r} (known: {', '.join(sorted(KNOWN))}); "
                        "emotion protocols drop this sample",
                    )
                )


@dataclass(frozen=True)
class DatasetSpec:
    """How ``mer`` reads one dataset as published.

    Attributes:
        name: Registry key ("casme2").
        title: Display name ("CASME II").
        parse: Sheet path → :class:`ParseResult`.
        sheet_globs: Patterns (relative to the dataset root) where the annotation sheet is looked for
            when ``mer data add`` is not told where it is.
        frame_layout: Name of the frame layout in :data:`mer.protocols.layouts.LAYOUTS`.
        fps: Frame rate of the recordings (for display and apex estimation).
        licence: One line on how to obtain the data.
    """

    name: str
    title: str
    parse: ParseFn
    sheet_globs: Sequence[str] = ()
    frame_layout: str = "numbered-frames"
    fps: float = 200.0
    licence: str = ""

    def find_sheet(self, root: Path) -> Path:
        """Locate the annotation sheet under ``root``.

        Raises:
            FileNotFoundError: nothing matches; the message lists the patterns tried.
        """
        for pattern in self.sheet_globs:
            hits = sorted(Path(root).glob(pattern))
            if hits:
                return hits[0]
        tried = ", ".join(self.sheet_globs) or "(no pattern)"
        raise MissingInputError(
            f"no annotation sheet for {self.name} under {root} (tried {tried}); "
            f"pass it with `mer data add {self.name} ROOT --annotations FILE`"
        )


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to :data:`DATASETS`."""
    DATASETS.register(spec.name, spec)
    return spec
