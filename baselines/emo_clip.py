"""Emo-guided CLIP (SPEC C; Table VIII last row): MER-CLIP with the AU prompt replaced by the emotion
name in the same templates ("This micro-expression involves {emotion}."), same CLIP loss and head."""

from __future__ import annotations

from mer.merclip.estimator import Variant
from mer.merclip.variants import register_variant

register_variant(
    "emo-clip",
    Variant(prompt_source="emotion"),
    "Emo-guided CLIP: emotion-label prompts + CLIP loss (Table VIII, Emo-Guided)",
)
