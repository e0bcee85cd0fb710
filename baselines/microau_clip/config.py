"""Micro-AU CLIP configuration (SPEC B, assumed): preparation, component switches, architecture and
training recipe per size, MiAUCL prompt templates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mer.baselines.microau_clip.model import MicroAUClipConfig
from mer.errors import OptionValueError
from mer.zoo.train import TrainConfig

# Three key frames (onset, apex, offset: SPEC A.1's key-frame rule keeps all three); the apex is at
# index T // 2 for any T.
PREPARE: dict[str, dict[str, int]] = {"base": {"frames": 3, "size": 224}, "tiny": {"frames": 3, "size": 64}}

# MiAUCL prompts (SPEC B.3.5, assumed): an AU's phrase said to be present, or said to be absent.
PRESENT_TEMPLATES = ("This micro-expression involves {}.", "The face is {}.", "A person {}.")
ABSENT_TEMPLATES = ("This micro-expression does not involve {}.", "The face is not {}.", "A person not {}.")
#: AU vocabulary of a label-free model on a dataset without an AU protocol.
DEFAULT_VOCABULARY = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25)


@dataclass(frozen=True)
class Variant:
    """Component switches (the ablations of the issue) and the input.

    Attributes:
        pta: Patch Token Attention over AU regions.
        gda: Global Dependency Attention across AU tokens.
        gdloss: GDLoss on the GDA attention (needs ``gda``).
        miaucl: Text-similarity head with the MiAUCL loss (else a linear head, BCE only).
        input: "pair" (apex + onset–apex difference) or "apex".
        combination_prompts: Align a global embedding with the AU-combination description (the
            label-free ``prompts`` scorer reads it).
    """

    pta: bool = True
    gda: bool = True
    gdloss: bool = True
    miaucl: bool = True
    input: str = "pair"
    combination_prompts: bool = False


def network_config(size: str, aus: tuple[int, ...], variant: Variant) -> MicroAUClipConfig:
    """Architecture at ``size`` for ``variant``."""
    switches = dict(
        pta=variant.pta,
        gda=variant.gda,
        text_head=variant.miaucl,
        input=variant.input,
        global_embedding=variant.combination_prompts,
    )
    if size == "base":
        return MicroAUClipConfig(aus=aus, **switches)
    if size == "tiny":
        return MicroAUClipConfig(
            aus=aus, image_size=64, patch_size=8, width=64, layers=2, heads=4, au_dim=64, embed_dim=32,
            gda_heads=4, **switches,
        )  # fmt: skip
    raise OptionValueError(f"unknown size {size!r} (base or tiny)")


def train_recipe(size: str, epochs: int | None = None) -> TrainConfig:
    """``base``: 30 epochs, batch 32, LR 3e-5. ``tiny`` (from scratch, CPU): 30 epochs, LR 2e-3."""
    if size == "base":
        cfg = TrainConfig(epochs=30, batch_size=32, lr=3e-5, warmup_epochs=3, eval_batch_size=64)
    else:
        cfg = TrainConfig(epochs=30, batch_size=32, lr=2e-3, warmup_epochs=2, eval_batch_size=128)
    if epochs:
        cfg = replace(cfg, epochs=epochs, warmup_epochs=min(cfg.warmup_epochs, max(0, epochs // 5)))
    return cfg
