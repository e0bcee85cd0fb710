"""AU prompts (SPEC A.3, Eqs. 5–6): an AU combination → an action-oriented description → a template.

Rules: AUs in ascending number order; one AU is its phrase, several are "a combination of" the phrases,
joined "A, B and C" (CASME II, SAMM) or "A, B, C" (CAS(ME)³, DFME); laterality L/R inserts "left"/"right"
into the phrase; an uncertain AU gets " might be present"; alternatives are joined with " or ". The
FACS-name variant (Table X) uses "Inner Brow Raiser" style names instead of the action phrases.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from mer.errors import OptionValueError
from mer.protocols.au import FACS_NAMES
from mer.protocols.sample import AU

# Table II [P] plus the extra phrases of the authors' label maps [C].
ACTION_PHRASES: dict[int, str] = {
    1: "raising the inner part of the brows",
    2: "raising the outer part of the brows",
    4: "lowering the brows",
    5: "raising the upper lids",
    6: "raising the cheeks",
    7: "tightening the lids",
    9: "wrinkling the nose",
    10: "raising the upper lip",
    12: "pulling the corners of the lips",
    14: "creating the dimples",
    15: "depressing the corners of the lips",
    16: "depressing the lower lip",
    17: "raising the chin",
    18: "puckering the lips",
    20: "stretching the lips",
    21: "tightening the neck",
    22: "pursing the lips into a funnel shape",
    23: "tightening the lips",
    24: "pressing the lips",
    25: "parting the lips",
    26: "dropping the jaw",
    28: "sucking the lips",
    31: "clenching the jaw",
    34: "inflating the cheeks by exerting pressure from within the mouth",
    38: "dilating the nostrils",
    39: "compressing the nostrils",
    43: "closing the eyes",
    57: "moving the head forward",
    58: "moving the head back",
}

# One-sided forms, as the authors' label maps write them ("{side}" is "left" or "right").
LATERAL_PHRASES: dict[int, str] = {
    1: "raising the inner part of the {side} brow",
    2: "raising the outer part of the {side} brow",
    4: "lowering the {side} brow",
    5: "raising the {side} upper lid",
    6: "raising the {side} cheek",
    7: "tightening the {side} lid",
    9: "wrinkling the {side} side of the nose",
    10: "raising the {side} upper lip",
    12: "pulling the {side} corner of the lips",
    14: "creating the {side} dimple",
    15: "depressing the {side} corner of the lips",
    17: "raising the chin to the {side}",
    18: "puckering the lips to the {side}",
    20: "stretching the lips down and to the {side}",
}

# FACS names (the "FACS-Based" prompts of Table X) come from the AU grammar's one table.

# Table XII; the default uses templates 1–7.
TEMPLATES: tuple[str, ...] = (
    "This micro-expression involves {}.",
    "Key features of this micro-expression are {}.",
    "This micro-expression is characterized by {}.",
    "One can identify this micro-expression by {}.",
    "This micro-expression typically manifests as {}.",
    "The hallmark of this micro-expression is {}.",
    "An identifiable trait of this micro-expression is {}.",
    "Observing {} helps identify this micro-expression.",
    "The facial muscle movements in this micro-expression include {}.",
    "This micro-expression can be recognized through {}.",
)

# How each dataset's label map joins the last item [C].
JOIN_STYLE: dict[str, str] = {"casme2": "and", "samm": "and", "casme3": "comma", "dfme": "comma"}

# A sample with no coded AU still needs a prompt; UNKNOWN in [P]/[C] (their lists have none such).
NO_AU_TEXT = "no visible facial action"

_SIDES = {"L": "left", "R": "right"}


def au_phrase(au: AU, style: str = "action") -> str:
    """The phrase of one AU, with its side, alternatives and uncertainty.

    Args:
        au: The AU record.
        style: "action" (Table II phrases) or "facs" (FACS names).
    """
    side = _SIDES.get(au.side, "")
    if style == "facs":
        name = FACS_NAMES.get(au.number, f"AU{au.number}")
        text = f"{side.capitalize()} {name}" if side else name
    elif style == "action":
        if side and au.number in LATERAL_PHRASES:
            text = LATERAL_PHRASES[au.number].format(side=side)
        else:
            text = ACTION_PHRASES.get(au.number, f"action unit {au.number}")
            if side:
                text = f"{text} on the {side} side"
    else:
        raise OptionValueError(f"unknown prompt style {style!r} (action or facs)")
    if au.alternatives:
        text = " or ".join([text, *(au_phrase(alt, style) for alt in au.alternatives)])
    if au.uncertain:
        text += " might be present"
    return text


def describe_aus(
    aus: Sequence[AU], *, join: str = "and", style: str = "action", order: Sequence[int] | None = None
) -> str:
    """Eq. 5: the description D of an AU combination.

    Args:
        aus: The sample's AUs (any order: they are sorted by AU number, then side).
        join: "and" ("A, B and C") or "comma" ("A, B, C").
        style: "action" or "facs".
        order: Optional permutation of the sorted AUs (the shuffled-order ablation of Table X).
    """
    items = sorted(aus, key=lambda a: (a.number, a.side))
    if order is not None:
        items = [items[i] for i in order]
    phrases = [au_phrase(a, style) for a in items]
    if not phrases:
        return NO_AU_TEXT
    if len(phrases) == 1:
        return phrases[0]
    if join == "and":
        body = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    elif join == "comma":
        body = ", ".join(phrases)
    else:
        raise OptionValueError(f"unknown join style {join!r} (and or comma)")
    return "a combination of " + body


def join_style(dataset: str) -> str:
    """The join style of a dataset's label map; other datasets (SynthME) use "and"."""
    return JOIN_STYLE.get(dataset, "and")


@dataclass(frozen=True)
class PromptConfig:
    """How prompts are built.

    Attributes:
        style: "action" (the paper) or "facs" (Table X, FACS-Based).
        templates: Number of templates in use, 1..n of Table XII (7 in the paper).
        shuffle: Shuffle the AU order (Table X, "S") instead of ascending order.
        shuffles: Distinct random orders kept per combination when shuffling (their text features are
            cached like every other prompt; one is drawn per sample and step).
        join: Force a join style; None follows the dataset.
    """

    style: str = "action"
    templates: int = 7
    shuffle: bool = False
    shuffles: int = 4
    join: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.templates <= len(TEMPLATES):
            raise OptionValueError(f"templates must be 1..{len(TEMPLATES)}, not {self.templates}")


def au_key(aus: Sequence[AU]) -> tuple:
    """A hashable key of an AU combination (its sorted records)."""
    return tuple(sorted(aus, key=lambda a: (a.number, a.side, a.intensity, a.uncertain)))


def descriptions_for(aus: Sequence[AU], dataset: str, cfg: PromptConfig, seed: int = 0) -> list[str]:
    """Every description variant of one combination: one, or ``cfg.shuffles`` random orders."""
    join = cfg.join or join_style(dataset)
    if not cfg.shuffle or len(aus) < 2:
        return [describe_aus(aus, join=join, style=cfg.style)]
    rng = random.Random(f"{seed}:{describe_aus(aus)}")
    out = []
    for _ in range(cfg.shuffles):
        order = list(range(len(aus)))
        rng.shuffle(order)
        out.append(describe_aus(aus, join=join, style=cfg.style, order=order))
    return out


def fill_templates(description: str, n: int) -> list[str]:
    """Eq. 6: the description in templates 1..n."""
    return [t.format(description) for t in TEMPLATES[:n]]
