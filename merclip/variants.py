"""Every registered MER-CLIP-family model: ``merclip`` and each ablation row of Tables VIII–XI.

Variant names say what differs from ``merclip`` (the paper's full model, Table VIII last full row). The
"DA" column of the tables is LSFM + AugMix; colour jitter and flip follow the recipe in every row.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from mer.merclip.estimator import Variant, build_estimator, plan_estimator
from mer.merclip.prompts import PromptConfig
from mer.merclip.recipes import PREPARE
from mer.zoo.api import ModelSpec, register_model

FULL = Variant()
NO_DA = replace(FULL, lsfm=False, augmix=False)

# name → (variant, table row it reproduces)
MERCLIP_VARIANTS: dict[str, tuple[Variant, str]] = {
    "merclip": (FULL, "MER-CLIP (Tables IV–VII; VIII row 6)"),
    "merclip-no-align": (
        replace(NO_DA, align=False),
        "no AU alignment: UniformerV2 + emotion transformer head, no DA (Table VIII row 2)",
    ),
    "merclip-no-eim": (
        replace(NO_DA, head="linear", progressive=False),
        "AU alignment + linear head, no emotion head, no progressive, no DA (Table VIII row 3)",
    ),
    "merclip-no-progressive": (
        replace(NO_DA, progressive=False),
        "alignment + emotion head with 1:1 loss weights, no DA (Table VIII row 4)",
    ),
    "merclip-no-aug": (NO_DA, "no LSFM / AugMix (Table VIII row 5; Table IX MER-CLIP Base)"),
    "merclip-lsfm": (replace(FULL, augmix=False), "LSFM only (Table IX MER-CLIP +LSFM)"),
    "merclip-augmix": (replace(FULL, lsfm=False), "AugMix only (Table IX MER-CLIP +AugMix)"),
    "merclip-facs-prompts": (
        replace(FULL, prompts=PromptConfig(style="facs")),
        "FACS-name prompts (Table X, F / FACS-Based)",
    ),
    "merclip-shuffled-aus": (
        replace(FULL, prompts=PromptConfig(shuffle=True)),
        "shuffled AU order in prompts (Table X, S / Action-Oriented)",
    ),
    **{
        f"merclip-templates-{k}": (
            replace(FULL, prompts=PromptConfig(templates=k)),
            f"templates 1–{k} of Table XII (Table XI)",
        )
        for k in (1, 3, 5, 10)
    },
}


def register_variant(name: str, variant: Variant, description: str) -> ModelSpec:
    """Register one MER-CLIP-family model under ``name`` (sizes base, tiny)."""
    return register_model(
        ModelSpec(
            name=name,
            build=partial(build_estimator, variant, name=name),
            plan=partial(plan_estimator, variant, name=name),
            sizes=("base", "tiny"),
            description=description,
            family="deep",
            recipe=PREPARE,
        )
    )


def register_all() -> None:
    for name, (variant, description) in MERCLIP_VARIANTS.items():
        register_variant(name, variant, description)
