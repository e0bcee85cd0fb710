"""Micro-AU CLIP (Wei et al., arXiv 2603.16302): a **reconstruction from the abstract** (SPEC B).

Only the abstract of the paper could be read and no code is public; every design choice beyond the
component names (PTA, GDA, GDLoss, MiAUCL, emotion-label-free MER) is an assumption documented where it
is made. Registered models: ``microau-clip`` and its ablations (``-no-pta``, ``-no-gda``,
``-no-gdloss``, ``-no-miaucl``) for the AU protocols, and ``microau-clip-labelfree`` /
``microau-clip-labelfree-prompts`` for the emotion protocols (trained on AU labels only).
"""

from mer.baselines.microau_clip import registration  # noqa: F401  (registers the models)
