"""Training recipes of MER-CLIP-family models: ``paper`` (default) and ``official`` (SPEC decisions
table; per dataset, SPEC A.5b), per size.

:func:`resolve_training` is the one place a recipe becomes numbers: the estimator trains with what it
returns and ``mer bench run --dry-run`` prints it, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mer.errors import OptionValueError
from mer.merclip.augment import AugmentConfig
from mer.zoo.train import TrainConfig

RECIPES = ("paper", "official")

# Preparation each size expects from the runner: frames T and square side S.
PREPARE: dict[str, dict[str, int]] = {"base": {"frames": 16, "size": 224}, "tiny": {"frames": 8, "size": 48}}

# The authors trained on 2 GPUs × 8 clips; mmengine's auto_scale_lr multiplies each config's LR by
# global batch / base batch (SPEC A.5).
AUTHORS_GLOBAL_BATCH = 16
# TSN sampling of the official CAS(ME)³ recipe: slots cached per segment (the test frame + 2 to draw from).
TSN_POOL = 3
# Loss constants of Eqs. 13–15 (SPEC A.4): focal γ, W (sum of the two weights), the end weight w_min.
FOCAL_GAMMA, WEIGHT_SUM, W_MIN = 2.0, 2.0, 1.0


@dataclass(frozen=True)
class OfficialConfig:
    """One of the authors' configs (one row of SPEC A.5b).

    Attributes:
        config: The config file in ``projects/merclip/configs/``.
        lr: The config's LR (before auto-scaling).
        base_batch: ``auto_scale_lr.base_batch_size``.
        flip: Horizontal-flip probability (0: commented out).
        color_jitter: ColorJitter probability (1: in the pipeline, 0: commented out).
        drop_path: Backbone / global-block drop path.
        balanced: The config names ``ImbalancedSampler`` (inverse class frequency, with replacement).
        w0: ``clip_loss_ratio``, the start weight of L_clip.
        sampler: "keyframe" (pre-extracted key frames) or "uniform" (TSN segments, CAS(ME)³).
        test_short: Short side before the centre 224 crop at test time.
    """

    config: str
    lr: float
    flip: float
    color_jitter: float
    drop_path: tuple[float, float]
    balanced: bool
    w0: float = 2.0
    sampler: str = "keyframe"
    test_short: int = 224
    base_batch: int = 128

    @property
    def effective_lr(self) -> float:
        return self.lr * AUTHORS_GLOBAL_BATCH / self.base_batch


_DP = (0.2, 0.4)
OFFICIAL: dict[str, OfficialConfig] = {
    "casme2-5": OfficialConfig("merclip_casme2.py", 5e-5, 0.5, 1.0, (0.0, 0.0), True),
    "casme2-3": OfficialConfig("merclip_casme2_3cls.py", 5e-5, 0.5, 1.0, _DP, False),
    "casme2-dfme": OfficialConfig("merclip_casme2_dfme-pre.py", 3e-5, 0.0, 1.0, _DP, False),
    "samm-5": OfficialConfig("merclip_samm.py", 7e-5, 0.0, 0.0, _DP, False, test_short=256),
    "samm-3": OfficialConfig("merclip_samm_3cls.py", 7e-5, 0.0, 1.0, _DP, True),
    "samm-dfme": OfficialConfig("merclip_samm_dfme-pre.py", 7e-5, 0.0, 0.0, _DP, False, w0=1.5),
    "casme3": OfficialConfig("merclip_casme3.py", 5e-5, 0.0, 1.0, _DP, True, sampler="uniform"),
    "dfme": OfficialConfig("merclip_clshead_dfme_ccac.py", 5e-5, 0.0, 1.0, (0.0, 0.0), False),
}


def official_config(protocol: str | None, after_dfme: bool = False) -> OfficialConfig | None:
    """The authors' config for ``protocol`` (None: they have none, e.g. SynthME or MEGC2019).

    ``after_dfme``: the run starts from a MER-CLIP trained on DFME (the ``*_dfme-pre`` configs).
    """
    p = protocol or ""
    for dataset in ("casme2", "samm"):
        if p.startswith(f"loso-{dataset}-"):
            return OFFICIAL[f"{dataset}-dfme" if after_dfme else f"{dataset}-{p.rsplit('-', 1)[1]}"]
    if p.startswith("loso-casme3-"):
        return OFFICIAL["casme3"]
    if p.startswith("dfme-test-"):
        return OFFICIAL["dfme"]
    return None


def train_config(recipe: str, size: str, lr: float | None = None) -> TrainConfig:
    """Optimisation of ``recipe`` at ``size``.

    ``paper``: AdamW 5e-5, wd 0.05, global batch 16, 55 epochs, 5 warm-up, cosine to 0.1×, clip 20.
    ``official``: the same with mmengine's auto-scaled LR (``lr``; default 5e-5 × 16/128 = 6.25e-6).
    ``tiny`` (CPU, trained from scratch on the embedded benchmark): 14 epochs, 1 warm-up, LR 3e-3.
    """
    if recipe not in RECIPES:
        raise OptionValueError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
    cfg = TrainConfig()
    if recipe == "official":
        cfg = replace(cfg, lr=lr if lr is not None else 5e-5 * AUTHORS_GLOBAL_BATCH / 128)
    if size == "tiny":
        cfg = replace(cfg, epochs=14, warmup_epochs=1, lr=3e-3, eval_batch_size=64)
    return cfg


def augment_config(
    recipe: str,
    *,
    lsfm: bool,
    augmix: bool,
    lsfm_lambda: float = 0.5,
    official: OfficialConfig | None = None,
) -> AugmentConfig:
    """Augmentation of ``recipe`` with the ablation switches for LSFM and AugMix (the "DA" column).

    ``paper``: every augmentation with p = 0.5. ``official``: AugMix always on, flip and ColorJitter as
    the dataset's config has them (``official``; without one: ColorJitter always, flip 0.5).
    """
    if recipe == "official":
        flip, jitter = (official.flip, official.color_jitter) if official else (0.5, 1.0)
        base = AugmentConfig(augmix=1.0, color_jitter=jitter, flip=flip, lsfm=0.5)
    else:
        base = AugmentConfig()
    return replace(
        base,
        augmix=base.augmix if augmix else 0.0,
        lsfm=base.lsfm if lsfm else 0.0,
        lsfm_lambda=lsfm_lambda,
    )


@dataclass(frozen=True)
class Training:
    """Everything a MER-CLIP-family recipe sets, resolved for one protocol and size.

    Attributes:
        recipe: "paper" or "official".
        config: The authors' config it follows (official), or None.
        train: Optimiser, schedule, batch, sampler.
        augment: Augmentation switches.
        drop_path: Backbone / global-block drop path of the encoder.
        w0: Start weight of L_clip (Eq. 15).
        preparation: What the recipe asks of preparation (sampler, short side), before the user's flags.
        notes: What differs from the recipe as written (said on screen and recorded in run.json).
    """

    recipe: str
    config: str | None
    train: TrainConfig
    augment: AugmentConfig
    drop_path: tuple[float, float]
    w0: float
    preparation: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def describe(self, progressive: bool = True, align: bool = True) -> dict[str, Any]:
        """The values ``--dry-run`` prints (JSON-ready)."""
        t, a = self.train, self.augment
        return {
            "recipe": self.recipe,
            "authors_config": self.config,
            "lr": t.lr,
            "global_batch": t.batch_size,
            "epochs": t.epochs,
            "warmup_epochs": t.warmup_epochs,
            "weight_decay": t.weight_decay,
            "min_lr_ratio": t.min_lr_ratio,
            "grad_clip": t.grad_clip,
            "batch_sampler": "balanced" if t.balanced_sampler else "shuffle",
            "flip": a.flip,
            "color_jitter": a.color_jitter,
            "augmix": a.augmix,
            "lsfm": a.lsfm,
            "lsfm_lambda": a.lsfm_lambda,
            "drop_path": list(self.drop_path),
            "loss": {
                "focal_gamma": FOCAL_GAMMA,
                "clip": align,
                "progressive": progressive,
                "w0": self.w0 if progressive and align else None,
                "w_min": W_MIN if progressive and align else None,
                "weight_sum": WEIGHT_SUM,
            },
        }


def _size_drop_path(size: str) -> tuple[float, float]:
    from mer.merclip.uniformerv2 import uniformerv2_config

    enc = uniformerv2_config(size)
    return (enc.backbone_drop_path, enc.global_drop_path)


def resolve_training(
    recipe: str,
    size: str,
    protocol: str | None,
    *,
    lsfm: bool,
    augmix: bool,
    lsfm_lambda: float = 0.5,
    after_dfme: bool = False,
    epochs: int | None = None,
    balanced_sampler: bool | None = None,
) -> Training:
    """The training of ``recipe`` at ``size`` on ``protocol``; user options (``epochs``,
    ``balanced_sampler``) win over the recipe.

    Raises:
        ValueError: unknown recipe.
    """
    if recipe not in RECIPES:
        raise OptionValueError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
    notes: list[str] = []
    official = official_config(protocol, after_dfme) if recipe == "official" else None
    if recipe == "official" and official is None:
        notes.append(
            f"the authors have no config for protocol {protocol}: official uses their common values "
            "(LR 5e-5 × 16/128, AugMix and ColorJitter always, flip 0.5)"
        )
    cfg = train_config(recipe, size, official.effective_lr if official else None)
    if size == "tiny" and recipe == "official":
        notes.append("size tiny keeps its CPU schedule (LR 3e-3, 14 epochs, 1 warm-up), not the recipe's LR")
    balanced = official.balanced if official else False
    if balanced_sampler is not None:
        if official and balanced_sampler != official.balanced:
            notes.append(f"-o balanced_sampler={str(balanced_sampler).lower()} overrides {official.config}")
        balanced = balanced_sampler
    cfg = replace(cfg, balanced_sampler=bool(balanced), **({"epochs": epochs} if epochs else {}))
    if epochs and cfg.warmup_epochs >= epochs:
        cfg = replace(cfg, warmup_epochs=max(0, epochs // 5))
    prep: dict[str, Any] = {}
    if official:
        prep["sampler"] = official.sampler
        if official.test_short != 224:  # scaled to the crop of the size: 256 at 224, 55 at 48
            crop = PREPARE.get(size, PREPARE["base"])["size"]
            prep["resize_short"] = round(crop * official.test_short / 224)
        if official.sampler == "uniform":
            # the test frame and 2 training candidates per segment: exact for segments of <= 2 frames
            # (clips up to 32 frames, about 1 s of CAS(ME)³ at 30 fps), spread evenly over longer ones
            prep["pool"] = TSN_POOL
    return Training(
        recipe=recipe,
        config=official.config if official else None,
        train=cfg,
        augment=augment_config(recipe, lsfm=lsfm, augmix=augmix, lsfm_lambda=lsfm_lambda, official=official),
        drop_path=official.drop_path if official else _size_drop_path(size),
        w0=official.w0 if official else 2.0,
        preparation=prep,
        notes=tuple(notes),
    )
