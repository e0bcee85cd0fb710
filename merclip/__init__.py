"""MER-CLIP: AU-guided vision-language alignment for micro-expression recognition (SPEC A).

Importing this package registers ``merclip`` and its ablation variants in :data:`mer.zoo.api.MODELS`.
"""

from mer.merclip.variants import register_all

register_all()
