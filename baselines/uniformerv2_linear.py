"""UniformerV2 with a linear head (SPEC C; Table VIII row 1, Table IX UniformerV2 rows).

The MER-CLIP vision encoder, dropout 0.5 + FC on the fused feature, focal loss, no text branch; LSFM
uses λ = 0.3 as in the authors' UniformerV2-only config.
"""

from __future__ import annotations

from mer.merclip.estimator import Variant
from mer.merclip.variants import register_variant

BASE = Variant(head="linear", align=False, progressive=False, lsfm=False, augmix=False, lsfm_lambda=0.3)

register_variant("uniformerv2", BASE, "UniformerV2 + linear head, no DA (Table VIII row 1; Table IX Base)")
register_variant(
    "uniformerv2-lsfm", Variant(**{**BASE.__dict__, "lsfm": True}), "UniformerV2 +LSFM (Table IX)"
)
register_variant(
    "uniformerv2-augmix", Variant(**{**BASE.__dict__, "augmix": True}), "UniformerV2 +AugMix (Table IX)"
)
register_variant(
    "uniformerv2-lsfm-augmix",
    Variant(**{**BASE.__dict__, "lsfm": True, "augmix": True}),
    "UniformerV2 +LSFM+AugMix (Table IX)",
)
