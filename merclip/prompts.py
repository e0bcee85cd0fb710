"""AU prompts (SPEC A.3, Eqs. 5–6): an AU combination → an action-oriented description → a template.

Rules, as the authors' ``AUlabel_map.txt`` files apply them (``merclip/PROMPTS.md`` measures the match):

- **Order.** Recipe ``paper``: ascending AU number (the paper says only "fixed"). Recipe ``official``:
  the order written in the sheet's AU cell (``4+7+L2`` stays 4, 7, L2), as the authors' maps do.
- One AU is its phrase; several are "a combination of" the phrases, joined "A, B and C" (CASME II, SAMM)
  or "A, B, C" (CAS(ME)³, DFME); the same phrase is said once (CAS(ME)³ ``26+25``).
- Laterality L/R inserts "left"/"right" into the phrase; an uncertain AU gets " might be present";
  alternatives are joined with " or ", except alternatives of the same AU, which are one AU
  (``4A/B`` is AU4; ``A/L12`` is the left AU12, the most specific side).
- AU13 (Cheek Puffer, SAMM) has the cheek-puff phrase of AU34; CASME II and CAS(ME)³ render AU26 as
  "parting the lips". AUs without a phrase (SAMM's AU8, AU56, AU61: lips toward each other, head tilt,
  eye turn) are left out of the description, as in the authors' maps; :func:`unphrased` lists them so
  the estimator can say so.

The FACS-name variant (Table X) uses "Inner Brow Raiser" style names instead of the action phrases.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mer.errors import OptionValueError
from mer.protocols.au import FACS_NAMES, parse_au_cell, parse_facs_names
from mer.protocols.sample import AU, Sample

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
    # SAMM's AU13 is FACS's Cheek Puffer: the authors' SAMM map gives it the cheek-puff phrase of AU34.
    13: "inflating the cheeks by exerting pressure from within the mouth",
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

# Per-dataset phrases of the authors' maps [C]: CASME II and CAS(ME)³ never say "dropping the jaw".
DATASET_PHRASES: dict[str, dict[int, str]] = {
    "casme2": {26: "parting the lips"},
    "casme3": {26: "parting the lips"},
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


def _merge_same_au(au: AU) -> AU:
    """Alternatives that are the same AU (``4A/B``, ``A/L12``) become one AU, keeping the most specific
    side (L/R over none/A/T/B); alternatives of other AUs stay."""
    same = [a for a in au.alternatives if a.number == au.number]
    if not same:
        return au
    best = au
    for alt in same:
        if alt.side in _SIDES and best.side not in _SIDES:
            best = alt
    others = tuple(a for a in au.alternatives if a.number != au.number)
    return AU(best.number, best.side, best.intensity, au.uncertain, others)


def has_phrase(au: AU, dataset: str = "") -> bool:
    """Whether the action-oriented table has a phrase for ``au``'s number."""
    return au.number in ACTION_PHRASES or au.number in DATASET_PHRASES.get(dataset, {})


def unphrased(aus: Sequence[AU], dataset: str = "") -> list[int]:
    """AU numbers of ``aus`` that the action-oriented descriptions leave out (no phrase)."""
    return sorted({a.number for a in aus if not has_phrase(a, dataset)})


def au_phrase(au: AU, style: str = "action", dataset: str = "") -> str:
    """The phrase of one AU, with its side, alternatives and uncertainty.

    Args:
        au: The AU record.
        style: "action" (Table II phrases) or "facs" (FACS names).
        dataset: Dataset whose map's phrases apply (:data:`DATASET_PHRASES`).
    """
    au = _merge_same_au(au)
    side = _SIDES.get(au.side, "")
    if style == "facs":
        name = FACS_NAMES.get(au.number, f"AU{au.number}")
        text = f"{side.capitalize()} {name}" if side else name
    elif style == "action":
        own = DATASET_PHRASES.get(dataset, {})
        if au.number in own:
            text = own[au.number]
        elif side and au.number in LATERAL_PHRASES:
            text = LATERAL_PHRASES[au.number].format(side=side)
        else:
            text = ACTION_PHRASES.get(au.number, f"action unit {au.number}")
            if side:
                text = f"{text} on the {side} side"
    else:
        raise OptionValueError(f"unknown prompt style {style!r} (action or facs)")
    options = [text]
    for alt in au.alternatives:
        if style == "action" and not has_phrase(alt, dataset):
            continue
        phrase = au_phrase(alt, style, dataset)
        if phrase not in options:
            options.append(phrase)
    text = " or ".join(options)
    if au.uncertain:
        text += " might be present"
    return text


def describe_aus(
    aus: Sequence[AU],
    *,
    join: str = "and",
    style: str = "action",
    order: Sequence[int] | None = None,
    sort: bool = True,
    dataset: str = "",
) -> str:
    """Eq. 5: the description D of an AU combination.

    Args:
        aus: The sample's AUs.
        join: "and" ("A, B and C") or "comma" ("A, B, C").
        style: "action" or "facs".
        order: Optional permutation of the AUs (the shuffled-order ablation of Table X).
        sort: Sort by AU number, then side (recipe ``paper``); False keeps the given (written) order.
        dataset: Dataset whose map's phrases apply.
    """
    items = sorted(aus, key=lambda a: (a.number, a.side)) if sort else list(aus)
    if order is not None:
        items = [items[i] for i in order]
    if style == "action":  # AUs without a phrase are left out, as in the authors' maps
        items = [a for a in items if has_phrase(a, dataset)]
    phrases: list[str] = []
    for a in items:
        phrase = au_phrase(a, style, dataset)
        if phrase not in phrases:
            phrases.append(phrase)
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
        order: "ascending" (AU number) or "written" (the sheet's order); None follows the recipe
            (:data:`RECIPE_ORDER`).
    """

    style: str = "action"
    templates: int = 7
    shuffle: bool = False
    shuffles: int = 4
    join: str | None = None
    order: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.templates <= len(TEMPLATES):
            raise OptionValueError(f"templates must be 1..{len(TEMPLATES)}, not {self.templates}")
        if self.order not in (None, *ORDERS):
            raise OptionValueError(f"prompt AU order must be one of {', '.join(ORDERS)}, not {self.order!r}")


ORDERS = ("ascending", "written")
# Recipe → AU order of its prompts (SPEC decisions table: ``official`` rebuilds the authors' maps).
RECIPE_ORDER: dict[str, str] = {"paper": "ascending", "official": "written"}


def for_recipe(cfg: PromptConfig, recipe: str) -> PromptConfig:
    """``cfg`` with the AU order of ``recipe`` filled in (an order set explicitly is kept)."""
    if cfg.order is not None:
        return cfg
    return replace(cfg, order=RECIPE_ORDER.get(recipe, "ascending"))


def au_key(aus: Sequence[AU]) -> tuple:
    """A hashable key of an AU combination (its sorted records)."""
    return tuple(sorted(aus, key=lambda a: (a.number, a.side, a.intensity, a.uncertain)))


def written_aus(sample: Sample) -> tuple[AU, ...]:
    """The sample's AUs in the order its sheet writes them.

    The AU cell (``au_text``) is read again, as an AU cell or, for DFME, as FACS names; the reading
    is used only when it yields exactly the sample's AUs, otherwise (a sheet without an AU cell, e.g.
    SynthME's generated AUs) the sample's own ascending order is the written one.
    """
    if sample.au_text:
        for parse in (parse_au_cell, parse_facs_names):
            written = parse(sample.au_text).written
            if written and au_key(written) == au_key(sample.aus):
                return tuple(written)
    return tuple(sample.aus)


def prompt_aus(sample: Sample, cfg: PromptConfig) -> tuple[AU, ...]:
    """The AUs a prompt describes, in the order ``cfg`` says (also the key of the prompt bank)."""
    if cfg.order == "written" and not cfg.shuffle:
        return written_aus(sample)
    return au_key(sample.aus)


def descriptions_for(aus: Sequence[AU], dataset: str, cfg: PromptConfig, seed: int = 0) -> list[str]:
    """Every description variant of one combination: one, or ``cfg.shuffles`` random orders.

    With ``cfg.order == "written"`` the AUs are described in the order given (see :func:`prompt_aus`).
    """
    join = cfg.join or join_style(dataset)
    sort = cfg.order != "written"
    if not cfg.shuffle or len(aus) < 2:
        return [describe_aus(aus, join=join, style=cfg.style, sort=sort, dataset=dataset)]
    rng = random.Random(f"{seed}:{describe_aus(aus)}")
    out = []
    for _ in range(cfg.shuffles):
        order = list(range(len(aus)))
        rng.shuffle(order)
        out.append(describe_aus(aus, join=join, style=cfg.style, order=order, dataset=dataset))
    return out


def fill_templates(description: str, n: int) -> list[str]:
    """Eq. 6: the description in templates 1..n."""
    return [t.format(description) for t in TEMPLATES[:n]]
