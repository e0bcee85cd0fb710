"""Registers Micro-AU CLIP and its ablations (AU protocols) and the label-free models (emotion)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from mer.baselines.microau_clip.config import PREPARE, Variant
from mer.baselines.microau_clip.estimators import build_au_estimator, labelfree_builder
from mer.zoo.api import ModelSpec, register_model

FULL = Variant()
#: name → (variant, description): the full model and one ablation per component.
AU_VARIANTS: dict[str, tuple[Variant, str]] = {
    "microau-clip": (FULL, "Micro-AU CLIP (reconstruction from the abstract): PTA + GDA + GDLoss + MiAUCL"),
    "microau-clip-no-pta": (replace(FULL, pta=False), "Micro-AU CLIP without PTA (whole-image AU tokens)"),
    "microau-clip-no-gda": (replace(FULL, gda=False), "Micro-AU CLIP without GDA (and so without GDLoss)"),
    "microau-clip-no-gdloss": (replace(FULL, gdloss=False), "Micro-AU CLIP without GDLoss (GDA kept)"),
    "microau-clip-no-miaucl": (
        replace(FULL, miaucl=False),
        "Micro-AU CLIP without MiAUCL (linear per-AU head, BCE only)",
    ),
    "microau-clip-apex": (replace(FULL, input="apex"), "Micro-AU CLIP on the apex frame alone"),
}

for _name, (_variant, _desc) in AU_VARIANTS.items():
    register_model(
        ModelSpec(
            name=_name, build=partial(build_au_estimator, _variant, name=_name), sizes=("base", "tiny"),
            description=_desc, family="deep", recipe=PREPARE, task="au", reconstruction=True,
        )
    )  # fmt: skip

for _name, _scorer, _desc in (
    ("microau-clip-labelfree", "rule", "label-free MER: Micro-AU CLIP AUs → emotions by EMFACS-style rules"),
    (
        "microau-clip-labelfree-prompts",
        "prompts",
        "label-free MER: Micro-AU CLIP, emotion prompts composed of AU phrases",
    ),
):
    register_model(
        ModelSpec(
            name=_name, build=labelfree_builder(_scorer, _name), sizes=("base", "tiny"),
            description=f"{_desc} (reconstruction; trained on AU labels only)", family="deep",
            recipe=PREPARE, task="emotion", reconstruction=True,
        )
    )  # fmt: skip
