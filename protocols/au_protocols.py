"""Micro-AU detection protocols (SPEC B.1 / B.6, assumed): ``au-loso-casme2``, ``au-loso-samm``,
``au-loso-synth``.

Targets are multi-label: one 0/1 column per evaluated AU, built from the parsed AUs of the sheet with

- laterality merged (``L12``, ``R12``, ``A12`` all count as AU12);
- uncertain AUs (SAMM's ``ref(...)``, a trailing ``?``) counted present;
- alternatives (``R12/R14``, ``(R6 or R12)``) counted present, every one of them: the coder saw one of
  them and could not say which, the same benefit of the doubt given to an uncertain AU (and what a
  toolbox that reads every AU number of the cell does).

Every sample of the sheet is kept (a sample with none of the evaluated AUs is an all-negative row).
The AU sets follow the common micro-AU benchmark protocol (SPEC B.1): CASME II AU1, 2, 4, 7, 12, 14,
15, 17; SAMM AU2, 4, 7, 12. SynthME uses the eight AUs its generator renders often enough to score
(:data:`SYNTH_AUS`, expected prevalence ≥ 9 % from ``EMOTION_AUS``: AU1 ≈ 29 %, AU2 ≈ 20 %, AU4 ≈ 26 %,
AU6 ≈ 10 %, AU7 ≈ 12 %, AU9 ≈ 11 %, AU12 ≈ 23 %, AU17 ≈ 9 %); AU5, 10, 14, 15, 20, 24 and 25 stay below
7 % and would give a per-fold support of zero or one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import mer.protocols.au_metrics  # noqa: F401  (registers the "au" task with the runner)
from mer.protocols.protocol import Protocol, register_protocol
from mer.protocols.sample import Sample

CASME2_AUS: tuple[int, ...] = (1, 2, 4, 7, 12, 14, 15, 17)
SAMM_AUS: tuple[int, ...] = (2, 4, 7, 12)
SYNTH_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 9, 12, 17)
#: Dataset → the AUs its detection protocol evaluates (also the label-free models' AU vocabulary).
DATASET_AUS: dict[str, tuple[int, ...]] = {"casme2": CASME2_AUS, "samm": SAMM_AUS, "synthme": SYNTH_AUS}
REFERENCE = "Micro-AU CLIP (SPEC B.1, assumed: the common micro-AU protocol)"


def au_names(aus: Sequence[int]) -> tuple[str, ...]:
    """Column names: ``(1, 12)`` → ``("AU1", "AU12")``."""
    return tuple(f"AU{a}" for a in aus)


def present_aus(sample: Sample) -> set[int]:
    """AU numbers present in ``sample``: sides merged, uncertain and alternative AUs counted."""
    out: set[int] = set()
    for au in sample.aus:
        out.add(au.number)
        out.update(alt.number for alt in au.alternatives)
    return out


def au_targets(aus: Sequence[int]) -> Callable[[Sample], np.ndarray]:
    """A ``targets_of`` function: sample → ``[len(aus)]`` int64 0/1 in the order of ``aus``."""
    order = tuple(aus)

    def targets_of(sample: Sample) -> np.ndarray:
        have = present_aus(sample)
        return np.asarray([a in have for a in order], dtype=np.int64)

    return targets_of


def _keep_all(sample: Sample) -> str:
    return "aus"


def au_protocol(name: str, dataset: str, aus: Sequence[int], folds: int | None, description: str) -> Protocol:
    """An AU detection LOSO protocol over every sample of ``dataset``."""
    return Protocol(
        name=name,
        dataset=dataset,
        classes=au_names(aus),
        label_of=_keep_all,
        kind="loso",
        task="au",
        description=description,
        reference=REFERENCE if dataset != "synthme" else "SPEC D (SynthME has true AUs)",
        expected_folds=folds,
        targets_of=au_targets(aus),
    )


AU_LOSO_CASME2 = register_protocol(
    au_protocol("au-loso-casme2", "casme2", CASME2_AUS, 26, "CASME II, LOSO, micro-AU detection (8 AUs, 255)")
)
AU_LOSO_SAMM = register_protocol(
    au_protocol("au-loso-samm", "samm", SAMM_AUS, 29, "SAMM, LOSO, micro-AU detection (4 AUs, 159)")
)
AU_LOSO_SYNTH = register_protocol(
    au_protocol("au-loso-synth", "synthme", SYNTH_AUS, None, "SynthME, LOSO, micro-AU detection (8 AUs)")
)
