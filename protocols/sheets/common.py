"""What every sheet parser shares: reading a grid, finding the header, reading cells, checking rows.

Row numbers in reports are the ones a user sees when opening the file: Excel rows (1-based, the header
row counted) for .xlsx/.xls, line numbers for CSV and text lists.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mer.protocols.au import AUParse, parse_au_cell
from mer.protocols.datasets import ParseResult
from mer.protocols.sample import AnnotationError, Sample, ValidationIssue

# How far down the header may sit (SAMM has 13 rows of notes above it).
HEADER_SCAN_ROWS = 60


def norm(name: object) -> str:
    """A column name reduced to lower-case letters and digits ("Onset Frame" → "onsetframe")."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def is_blank(value: object) -> bool:
    """True for None, NaN and whitespace-only text."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return isinstance(value, str) and not value.strip()


def text(value: object) -> str:
    """A cell as stripped text; Excel floats that are integers lose their ``.0``."""
    if is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def int_cell(value: object) -> int | None:
    """A frame-number cell as an int, or None when it is empty or not a whole number (``/``)."""
    if is_blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    s = str(value).strip()
    if re.fullmatch(r"[+-]?\d+(\.0+)?", s):
        return int(float(s))
    return None


def subject_text(value: object, width: int) -> str:
    """A subject id as text with its leading zeros: Excel integers and digit strings are padded."""
    s = text(value)
    return s.zfill(width) if s.isdigit() else s


def read_grid(path: Path, sheets: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """Every candidate sheet of ``path`` as a raw grid (no header, cells as stored).

    Args:
        path: .xlsx, .xls or .csv file.
        sheets: Preferred sheet names, tried first (case-insensitive); the others follow.

    Raises:
        AnnotationError: missing file or a format that cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            # Everything as text so that subject "006" keeps its zeros; blank lines kept so that
            # line numbers stay true.
            grid = pd.read_csv(
                path,
                header=None,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                encoding="utf-8-sig",
            )
            return {path.stem: grid}
        if suffix in (".xlsx", ".xlsm", ".xls"):
            with warnings.catch_warnings():
                # pandas 3 flags its xlrd engine as deprecated; xlrd is still the reader for .xls here.
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                book = pd.read_excel(path, sheet_name=None, header=None, dtype=object)
        else:
            raise AnnotationError(
                f"{path}: unsupported annotation format {suffix!r} (use .xlsx, .xls or .csv)"
            )
    except AnnotationError:
        raise
    except Exception as e:  # pandas/openpyxl/xlrd raise many types for a damaged file
        raise AnnotationError(f"{path}: cannot read ({type(e).__name__}: {e})") from e
    order = {s.lower(): i for i, s in enumerate(sheets)}
    return dict(sorted(book.items(), key=lambda kv: order.get(kv[0].lower(), len(order))))


# The usual spellings of each column across the published sheets and their re-exports (compared after
# :func:`norm`, so case, spaces and underscores do not matter). A parser takes the fields it needs from
# here, first spelling = the one named in messages.
COLUMNS: dict[str, tuple[str, ...]] = {
    "dataset": ("Dataset", "Source", "Database", "Source Dataset"),
    "subject": ("Subject", "Sub", "Subject ID", "Participant"),
    "filename": ("Filename", "File name", "File", "Video", "Clip", "Sample", "Sequence", "Episode"),
    "onset": ("Onset", "Onset Frame", "OnsetFrame", "Onset Frame Number", "Start Frame"),
    "apex": ("Apex", "Apex Frame", "ApexFrame", "Apex Frame Number", "Apex Frame 1"),
    "offset": ("Offset", "Offset Frame", "OffsetFrame", "Offset Frame Number", "End Frame"),
    "aus": ("Action Units", "AU", "AUs", "Action Unit", "FACS", "FACS Code"),
    "emotion": ("Estimated Emotion", "Emotion", "Label", "Emotion Label", "Class", "Expression"),
    "objective": ("Objective Classes", "Objective Class"),
}


def columns(*fields: str, **extra: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``{field: spellings}`` for ``fields`` from :data:`COLUMNS`, plus dataset-specific ``extra`` ones."""
    out = {f: COLUMNS[f] for f in fields}
    for f, names in extra.items():
        out[f] = tuple(dict.fromkeys((*names, *COLUMNS.get(f, ()))))
    return out


@dataclass
class Table:
    """A sheet with its header found: data rows addressed by field name.

    Attributes:
        path: The file.
        sheet: Sheet name.
        grid: The raw grid.
        header_row: 0-based grid index of the header.
        columns: Field → (grid column index, header text as written).
    """

    path: Path
    sheet: str
    grid: pd.DataFrame
    header_row: int
    columns: dict[str, tuple[int, str]]

    def has(self, name: str) -> bool:
        return name in self.columns

    def header(self, name: str) -> str:
        """The column's header text as the sheet writes it (used in reports)."""
        return self.columns[name][1]

    def header_text(self) -> str:
        """Every non-blank cell of the header row, as written (for messages)."""
        return ", ".join(text(v) for v in self.grid.iloc[self.header_row] if not is_blank(v))

    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(sheet row number, {field: cell})`` for every non-empty data row."""
        for i in range(self.header_row + 1, len(self.grid)):
            values = self.grid.iloc[i]
            if all(is_blank(v) for v in values):
                continue
            yield i + 1, {name: values.iloc[col] for name, (col, _) in self.columns.items()}


def match_header(grid: pd.DataFrame, i: int, wanted: dict[str, Sequence[str]]) -> dict[str, tuple[int, str]]:
    """Which of the ``wanted`` fields row ``i`` of ``grid`` names: field → (column, header as written).

    A field takes its first spelling present in the row (so "Estimated Emotion" wins over a later
    "Emotion" column), and a column serves one field only.
    """
    cells = [norm(v) for v in grid.iloc[i]]
    found: dict[str, tuple[int, str]] = {}
    taken: set[int] = set()
    for f, aliases in wanted.items():
        for a in aliases:
            j = next((j for j, c in enumerate(cells) if c and c == norm(a) and j not in taken), None)
            if j is not None:
                found[f] = (j, text(grid.iloc[i, j]))
                taken.add(j)
                break
    return found


def describe_needs(required: dict[str, Sequence[str]], missing: Sequence[str]) -> str:
    """``onset (Onset / Onset Frame / OnsetFrame), ...`` for the ``missing`` fields."""
    return ", ".join(f"{f} ({' / '.join(required[f][:4])})" for f in missing)


def find_table(
    path: Path,
    required: dict[str, Sequence[str]],
    optional: dict[str, Sequence[str]] | None = None,
    sheets: Sequence[str] = (),
) -> Table:
    """Locate the header row holding every ``required`` column (by any of its aliases).

    Args:
        path: The annotation file.
        required: Field → accepted header names (compared after :func:`norm`).
        optional: Same, for columns that may be absent.
        sheets: Preferred sheet names.

    Raises:
        AnnotationError: no sheet has such a header; the message names the file, the header-like row
            that came closest (its columns as written) and the columns still missing.
    """
    wanted = {**required, **(optional or {})}
    best: tuple[int, str, int, dict[str, tuple[int, str]]] | None = None
    grids = read_grid(path, sheets)
    for name, grid in grids.items():
        for i in range(min(HEADER_SCAN_ROWS, len(grid))):
            found = match_header(grid, i, wanted)
            if all(f in found for f in required):
                return Table(Path(path), name, grid, i, found)
            score = sum(f in found for f in required)
            if score and (best is None or score > best[0]):
                best = (score, name, i, found)
    needed = ", ".join(al[0] for al in required.values())
    if best is None:
        raise AnnotationError(
            f"{path}: no header row with the columns {needed} "
            f"(none of them in the first {HEADER_SCAN_ROWS} rows)"
        )
    _, sheet, i, found = best
    grid = grids[sheet]
    written = ", ".join(text(v) for v in grid.iloc[i] if not is_blank(v))
    missing = [f for f in required if f not in found]
    raise AnnotationError(
        f"{path}: no header row with the columns {needed}. Closest: sheet {sheet!r} row {i + 1} "
        f"has {written}; missing {describe_needs(required, missing)}"
    )


@dataclass(frozen=True)
class Frames:
    """Usable frame numbers of one row.

    Attributes:
        onset: First frame.
        apex: Apex frame, or None when unknown.
        offset: Last frame (>= onset).
        written: The three cells as the sheet writes them when a repair changed them, else None
            (parsers keep it in ``Sample.extras["sheet_frames"]``).
    """

    onset: int
    apex: int | None
    offset: int
    written: tuple[str, str, str] | None = None

    def extras(self) -> dict[str, Any]:
        return {"sheet_frames": list(self.written)} if self.written else {}


@dataclass
class Collector:
    """Accumulates samples and issues, checking the things every sheet can get wrong."""

    dataset: str
    samples: list[Sample] = field(default_factory=list)
    issues: list[ValidationIssue] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    def issue(self, row: int | None, sample: str, column: str, problem: str, fatal: bool = False) -> None:
        self.issues.append(ValidationIssue(row, sample, column, problem, fatal))

    def aus(self, row: int, sample: str, column: str, cell: object) -> AUParse:
        """Parse an AU cell, reporting each warning against the row."""
        parsed = parse_au_cell(cell)
        for w in parsed.warnings:
            self.issue(row, sample, column, w)
        return parsed

    def no_au_column(self, table: Table) -> None:
        """Report once when the sheet has no action-unit column (emotion protocols still work)."""
        if not table.has("aus"):
            names = " / ".join(COLUMNS["aus"][:3])
            self.issue(None, "", "AU", f"no action-unit column ({names}): samples carry no AUs")

    def row_aus(self, table: Table, row: int, sample: str, cells: dict[str, Any]) -> tuple[AUParse, str]:
        """The row's parsed AUs and the cell as written (none when the sheet has no AU column)."""
        if not table.has("aus"):
            return AUParse(()), ""
        return self.aus(row, sample, table.header("aus"), cells["aus"]), text(cells["aus"])

    def frames(
        self, row: int, sample: str, cols: tuple[str, str, str], onset: object, apex: object, offset: object
    ) -> Frames | None:
        """Check onset/apex/offset cells; returns usable numbers or None (fatal issue recorded).

        The sheet's numbers are kept where they make sense. Repairs, each reported:
        unknown apex (``/``) → None (preparation estimates it); apex outside [onset, offset] → None;
        offset 0 or missing → the apex (the clip ends at its apex); offset before onset → the two swapped.
        """
        c_on, c_ap, c_off = cols
        on, ap, off = int_cell(onset), int_cell(apex), int_cell(offset)
        if on is None:
            self.issue(row, sample, c_on, f"onset {text(onset)!r} is not a frame number", fatal=True)
            return None
        if ap is None:
            self.issue(row, sample, c_ap, f"unknown apex {text(apex)!r}; kept with apex unknown")
        if off is None or off == 0:
            if ap is not None and ap >= on:
                self.issue(
                    row, sample, c_off, f"offset {text(offset) or 'empty'}; used the apex {ap} as offset"
                )
                off = ap
            else:
                self.issue(
                    row, sample, c_off, f"offset {text(offset) or 'empty'} and no usable apex", fatal=True
                )
                return None
        elif off < on:
            self.issue(row, sample, c_off, f"offset {off} before onset {on}; used [{off}, {on}]")
            on, off = off, on
        if ap is not None and not on <= ap <= off:
            self.issue(row, sample, c_ap, f"apex {ap} outside [{on}, {off}]; apex treated as unknown")
            ap = None
        written = (text(onset), text(apex), text(offset))
        changed = (on, ap, off) != (int_cell(onset), int_cell(apex), int_cell(offset))
        return Frames(on, ap, off, written if changed else None)

    def add(self, sample: Sample) -> None:
        """Keep ``sample`` unless its key is already taken (a fatal duplicate, both rows named)."""
        first = self._seen.get(sample.sample_id)
        if first is not None:
            self.issue(
                sample.row,
                sample.sample_id,
                "key",
                f"duplicate sample key (first at row {first})",
                fatal=True,
            )
            return
        self._seen[sample.sample_id] = sample.row if sample.row is not None else -1
        self.samples.append(sample)

    def result(self, path: Path, columns: str = "") -> ParseResult:
        """The parse; a sheet with no usable sample is an error, never an empty table.

        Args:
            path: The sheet (named in the error).
            columns: How its columns were read (named in the error), e.g. the header as written.

        Raises:
            AnnotationError: no usable sample; the message gives the columns and the first problems.
        """
        if not self.samples:
            fatal = [i for i in self.issues if i.fatal]
            shown = "; ".join(str(i) for i in fatal[:3])
            more = f" (and {len(fatal) - 3} more)" if len(fatal) > 3 else ""
            why = f": {len(fatal)} unusable row(s): {shown}{more}" if fatal else ": no data row"
            cols = f" Columns: {columns}." if columns else ""
            raise AnnotationError(f"{path}: no usable sample{why}.{cols}")
        return ParseResult(self.samples, self.issues)
