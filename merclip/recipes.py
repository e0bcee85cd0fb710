"""Training recipes of MER-CLIP-family models: ``paper`` (default) and ``official`` (SPEC decisions
table), per size."""

from __future__ import annotations

from dataclasses import replace

from mer.errors import OptionValueError
from mer.merclip.augment import AugmentConfig
from mer.zoo.train import TrainConfig

RECIPES = ("paper", "official")

# Preparation each size expects from the runner: frames T and square side S.
PREPARE: dict[str, dict[str, int]] = {"base": {"frames": 16, "size": 224}, "tiny": {"frames": 8, "size": 48}}


def train_config(recipe: str, size: str) -> TrainConfig:
    """Optimisation of ``recipe`` at ``size``.

    ``paper``: AdamW 5e-5, wd 0.05, global batch 16, 55 epochs, 5 warm-up, cosine to 0.1×, clip 20.
    ``official``: the same with mmengine's auto-scaled LR, 5e-5 × 16/128 = 6.25e-6.
    ``tiny`` (CPU, trained from scratch on the embedded benchmark): 14 epochs, 1 warm-up, LR 3e-3.
    """
    if recipe not in RECIPES:
        raise OptionValueError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
    cfg = TrainConfig()
    if recipe == "official":
        cfg = replace(cfg, lr=5e-5 * 16 / 128)
    if size == "tiny":
        cfg = replace(cfg, epochs=14, warmup_epochs=1, lr=3e-3, eval_batch_size=64)
    return cfg


def augment_config(recipe: str, *, lsfm: bool, augmix: bool, lsfm_lambda: float = 0.5) -> AugmentConfig:
    """Augmentation of ``recipe`` with the ablation switches for LSFM and AugMix (the "DA" column).

    ``paper``: every augmentation with p = 0.5. ``official``: AugMix and ColorJitter always on.
    """
    if recipe == "official":
        base = AugmentConfig(augmix=1.0, color_jitter=1.0, flip=0.5, lsfm=0.5)
    else:
        base = AugmentConfig()
    return replace(
        base,
        augmix=base.augmix if augmix else 0.0,
        lsfm=base.lsfm if lsfm else 0.0,
        lsfm_lambda=lsfm_lambda,
    )
