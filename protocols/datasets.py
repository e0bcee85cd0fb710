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
        issues: Every odd row found on the way (nothing is dropped silently).
    """

    samples: list[Sample]
    issues: list[ValidationIssue]


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
