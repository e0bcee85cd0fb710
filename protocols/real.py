"""The real datasets and their protocols (MER-CLIP, Table III), registered on import.

Class maps follow the paper, not the authors' released lists (which leave fear/sadness, and disgust
for SAMM, out of "negative"): negative = anger ∪ contempt ∪ disgust ∪ fear ∪ repression ∪ sadness,
positive = happiness, and the 3-class tasks drop "others". Class order is the label-index order of the
authors' code (SPEC A.1). Each protocol states its fold count, checked against the sheet.
"""

from __future__ import annotations

from collections.abc import Callable

from mer.protocols.datasets import DatasetSpec, register_dataset
from mer.protocols.emotions import three_class
from mer.protocols.protocol import Protocol, register_protocol
from mer.protocols.sample import Sample
from mer.protocols.sheets.casme2 import parse_casme2
from mer.protocols.sheets.casme3 import parse_casme3
from mer.protocols.sheets.dfme import EMOTIONS as DFME_EMOTIONS
from mer.protocols.sheets.dfme import parse_dfme
from mer.protocols.sheets.megc2019 import parse_megc2019
from mer.protocols.sheets.samm import parse_samm

TABLE_III = "MER-CLIP (Table III)"
#: MEGC2019 reports the composite's parts in this order (CASME II, SAMM, SMIC).
MEGC2019_PARTS = ("casme2", "samm", "smic")

CASME2 = register_dataset(
    DatasetSpec(
        name="casme2",
        title="CASME II",
        parse=parse_casme2,
        sheet_globs=(
            "CASME2-coding-*.xlsx",
            "CASME2-coding-*.xls",
            "CASME2-coding-*.csv",
            "**/CASME2-coding-*.xlsx",
        ),
        frame_layout="casme2",
        fps=200.0,
        licence="apply to the Institute of Psychology, Chinese Academy of Sciences (CASME II)",
    )
)
SAMM = register_dataset(
    DatasetSpec(
        name="samm",
        title="SAMM",
        parse=parse_samm,
        sheet_globs=(
            "SAMM_Micro_FACS_Codes_v2.xlsx",
            "SAMM_Micro_FACS_Codes*.xlsx",
            "SAMM_Micro_FACS_Codes*.csv",
            "**/SAMM_Micro_FACS_Codes*.xlsx",
        ),
        frame_layout="samm",
        fps=200.0,
        licence="licence agreement with Manchester Metropolitan University (SAMM)",
    )
)
CASME3 = register_dataset(
    DatasetSpec(
        name="casme3",
        title="CAS(ME)³ Part A",
        parse=parse_casme3,
        sheet_globs=(
            "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
            "cas(me)3_part_A_ME_label_JpgIndex_v1.xls",
            "**/cas(me)3_part_A_ME_label_JpgIndex_*",
        ),
        frame_layout="casme3",
        fps=30.0,
        licence="apply to the Institute of Psychology, Chinese Academy of Sciences (CAS(ME)³)",
    )
)
DFME = register_dataset(
    DatasetSpec(
        name="dfme",
        title="DFME (CCAC 2024 split)",
        parse=parse_dfme,
        sheet_globs=(
            "train_dfme_ccac_7class_emolabel_list.txt",
            "**/train_dfme_ccac_7class_emolabel_list.txt",
        ),
        frame_layout="numbered-frames",
        fps=500.0,
        licence="apply to the DFME authors (Institute of Psychology, CAS); CCAC 2024 split",
    )
)
MEGC2019 = register_dataset(
    DatasetSpec(
        name="megc2019",
        title="MEGC2019 composite (SMIC-HS + CASME II + SAMM)",
        parse=parse_megc2019,
        sheet_globs=("combined_3class_gt.csv", "**/combined_3class_gt.csv"),
        frame_layout="numbered-frames",
        fps=100.0,
        licence="needs the licences of SMIC, CASME II and SAMM",
    )
)


def _keep(classes: tuple[str, ...]) -> Callable[[Sample], str | None]:
    """A class map keeping the emotions named in ``classes`` as they are."""
    wanted = frozenset(classes)

    def label_of(sample: Sample) -> str | None:
        return sample.emotion if sample.emotion in wanted else None

    return label_of


def _three_class(sample: Sample) -> str | None:
    return three_class(sample.emotion)


def _four_class(sample: Sample) -> str | None:
    """CAS(ME)³ 4-class: the 3-class map plus "others"."""
    return "others" if sample.emotion == "others" else three_class(sample.emotion)


def _dfme_split(test_split: str) -> Callable[[Sample], str | None]:
    """DFME 7-class restricted to the training list and one test list."""
    wanted = frozenset(DFME_EMOTIONS)

    def label_of(sample: Sample) -> str | None:
        if sample.extras.get("split") not in ("train", test_split):
            return None
        return sample.emotion if sample.emotion in wanted else None

    return label_of


_THREE = ("negative", "positive", "surprise")
_SAMM_5 = ("anger", "contempt", "happiness", "others", "surprise")
_CASME2_5 = ("disgust", "happiness", "others", "repression", "surprise")
_CASME3_7 = ("anger", "disgust", "fear", "happiness", "others", "sadness", "surprise")

_LOSO = [
    ("loso-samm-5", "samm", _SAMM_5, _keep(_SAMM_5), 27, "SAMM, LOSO, 5 classes (136 samples)"),
    ("loso-samm-3", "samm", _THREE, _three_class, 28, "SAMM, LOSO, 3 classes (133 samples)"),
    ("loso-casme2-5", "casme2", _CASME2_5, _keep(_CASME2_5), 26, "CASME II, LOSO, 5 classes (249 samples)"),
    ("loso-casme2-3", "casme2", _THREE, _three_class, 25, "CASME II, LOSO, 3 classes (156 samples)"),
    (
        "loso-casme3-7",
        "casme3",
        _CASME3_7,
        _keep(_CASME3_7),
        94,
        "CAS(ME)³ Part A, LOSO, 7 classes (860 samples)",
    ),
    (
        "loso-casme3-4",
        "casme3",
        (*_THREE, "others"),
        _four_class,
        94,
        "CAS(ME)³ Part A, LOSO, 4 classes (860)",
    ),
    ("loso-casme3-3", "casme3", _THREE, _three_class, 88, "CAS(ME)³ Part A, LOSO, 3 classes (699 samples)"),
    (
        "megc2019",
        "megc2019",
        _THREE,
        _keep(_THREE),
        68,
        "MEGC2019 composite (SMIC-HS+CASME II+SAMM), LOSO, 3 classes",
    ),
]


def _source_dataset(subject: str) -> str:
    """The composite's subject ``casme2/sub01`` → its source dataset ``casme2`` (see the MEGC2019 parser)."""
    return subject.split("/", 1)[0] if "/" in subject else "unknown"


for _name, _ds, _classes, _label_of, _folds, _desc in _LOSO:
    composite = _ds == "megc2019"
    register_protocol(
        Protocol(
            name=_name,
            dataset=_ds,
            classes=_classes,
            label_of=_label_of,
            kind="loso",
            description=_desc,
            reference="MEGC2019 (combined_3class_gt.csv)" if composite else TABLE_III,
            expected_folds=_folds,
            part_of=_source_dataset if composite else None,
            parts=MEGC2019_PARTS if composite else (),
        )
    )

for _name, _split, _desc in (
    ("dfme-test-a", "test-a", "DFME 7 classes: train 1,856, test on Test A (474)"),
    ("dfme-test-b", "test-b", "DFME 7 classes: train 1,856, test on Test B (299)"),
):
    register_protocol(
        Protocol(
            name=_name,
            dataset="dfme",
            classes=DFME_EMOTIONS,
            label_of=_dfme_split(_split),
            kind="split",
            description=_desc,
            split_field="split",
            train_splits=("train",),
            test_split=_split,
            reference=TABLE_III,
            expected_folds=1,
        )
    )
