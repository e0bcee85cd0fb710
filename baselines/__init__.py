"""Baselines: reference rows, classical models, the papers' comparison methods."""

from mer.baselines import lbptop, reference  # noqa: F401  (registration)
from mer.baselines import emo_clip, uniformerv2_linear  # noqa: F401,E402  (registration)
from mer.baselines import htnet, off_apexnet, ststnet  # noqa: F401,E402  (registration; optical-flow models)
from mer.baselines import microau_clip  # noqa: F401,E402  (registration; Micro-AU CLIP reconstruction)
from mer.baselines import au_baselines  # noqa: F401,E402  (registration; micro-AU reference rows)
