"""Baselines: reference rows, classical models, the papers' comparison methods.

Importing this package registers every baseline in :data:`mer.zoo.api.MODELS`.
"""

from mer.baselines import (  # noqa: F401  (imported for registration)
    au_baselines,
    emo_clip,
    htnet,
    lbptop,
    microau_clip,
    off_apexnet,
    reference,
    ststnet,
    uniformerv2_linear,
)
