"""DFME: the public CCAC 2024 split as sample lists (train 1,856 / test A 474 / test B 299).

Each line of ``{train,testA,testB}_dfme_ccac_7class_emolabel_list.txt`` is ``<emotion>/<sample> <label>``
(an optional frame count may sit before the label); the label indexes ``Emolabel_map.txt`` (anger,
contempt, disgust, fear, happiness, sadness, surprise). The AU lists beside them give each sample a line
of ``AUlabel_map_short.txt`` (FACS names), read back into AUs. Subject = the sample's first field
(``sub0008``). The lists give no frame range: samples use their whole folder
(``extras["frame_range"] == "folder"``, onset = offset = 0 as placeholders).
"""

from __future__ import annotations

import re
from pathlib import Path

from mer.protocols.au import parse_facs_names
from mer.protocols.datasets import ParseResult
from mer.protocols.emotions import canonical_emotion
from mer.protocols.sample import AnnotationError, Sample
from mer.protocols.sheets.common import Collector

EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
SPLITS = {"train": "train", "testa": "test-a", "testb": "test-b"}
_SPLIT_RE = re.compile(r"^(train|testa|testb)", re.IGNORECASE)


def split_of(path: Path) -> str:
    """``train`` / ``test-a`` / ``test-b`` from a list's file name.

    Raises:
        AnnotationError: the name does not start with train, testA or testB.
    """
    m = _SPLIT_RE.match(Path(path).name)
    if m is None:
        raise AnnotationError(
            f"{path}: cannot tell the DFME split from the name (expected train*, testA*, testB*)"
        )
    return SPLITS[m.group(1).lower()]


def list_files(path: Path) -> list[Path]:
    """The emotion lists to read: ``path`` itself, or every ``*emolabel_list.txt`` in a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(
            path.glob("*emolabel_list*.txt"),
            key=lambda p: (
                ("train", "testa", "testb").index(_SPLIT_RE.match(p.name).group(1).lower())
                if _SPLIT_RE.match(p.name)
                else 9
            ),
        )
        if not files:
            raise AnnotationError(f"{path}: no *emolabel_list*.txt file in this folder")
        return files
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    return [path]


def _read_lines(path: Path) -> list[tuple[int, list[str]]]:
    return [
        (i, ln.split()) for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if ln.strip()
    ]


def _au_lookup(emo_list: Path) -> tuple[dict[str, int], list[str]]:
    """Sample → AU-map line index, and the map's lines, when the AU files sit beside ``emo_list``."""
    au_list = emo_list.with_name(emo_list.name.replace("7class_emolabel_list", "AUlabel_list"))
    au_map = emo_list.with_name("AUlabel_map_short.txt")
    if au_list == emo_list or not au_list.is_file() or not au_map.is_file():
        return {}, []
    index = {f[0]: int(f[1]) for _, f in _read_lines(au_list) if len(f) >= 2 and f[1].isdigit()}
    return index, au_map.read_text(encoding="utf-8").splitlines()


def parse_dfme(path: Path, dataset: str = "dfme") -> ParseResult:
    """Read DFME's list files: a folder holding the three lists, or one list.

    Raises:
        AnnotationError: a missing file, or a list name that does not give the split.
    """
    out = Collector(dataset)
    for lst in list_files(path):
        split = split_of(lst)
        au_index, au_map = _au_lookup(lst)
        for row, fields in _read_lines(lst):
            key = fields[0]
            where = f"{lst.name}"
            if len(fields) not in (2, 3) or "/" not in key or not fields[-1].isdigit():
                out.issue(row, key, where, "expected '<emotion>/<sample> [n_frames] <label>'", fatal=True)
                continue
            folder, name = key.split("/", 1)
            emotion = canonical_emotion(folder)
            label = int(fields[-1])
            if label >= len(EMOTIONS) or EMOTIONS[label] != emotion:
                named = EMOTIONS[label] if label < len(EMOTIONS) else "out of range"
                out.issue(
                    row, name, where, f"label {label} ({named}) disagrees with folder {folder!r}; folder kept"
                )
            extras = {"split": split, "list": lst.name, "frame_range": "folder"}
            if len(fields) == 3:
                extras["n_frames"] = int(fields[1])
            aus, au_text = (), ""
            if key in au_index:
                line = au_index[key]
                if 0 <= line < len(au_map):
                    au_text = au_map[line].strip()
                    parsed = parse_facs_names(au_text)
                    aus = parsed.aus
                    for w in parsed.warnings:
                        out.issue(row, name, "AU", w)
                else:
                    out.issue(row, name, "AU", f"AU map line {line} out of range")
            out.add(
                Sample(
                    dataset=dataset,
                    subject=name.split("-", 1)[0],
                    sample_id=name,
                    source=key,
                    onset=0,
                    apex=None,
                    offset=0,
                    emotion=emotion,
                    aus=aus,
                    au_text=au_text,
                    row=row,
                    extras=extras,
                )
            )
    return out.result(path, "'<emotion>/<sample> [n_frames] <label>' per line")
