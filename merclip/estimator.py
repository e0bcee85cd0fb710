"""Assemble a MER-CLIP-family :class:`~mer.zoo.deep.DeepEstimator`: network, text cache, batch
transform (augmentation on the device) and the progressive loss."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mer.errors import BadInputError, OptionValueError
from mer.merclip.augment import AugmentConfig, augment_batch, normalise_clips, to_model_input
from mer.merclip.convert import (
    inflate_clip_visual,
)
from mer.merclip.losses import clip_loss, focal_loss, progressive_weights
from mer.merclip.model import MerClip, MerClipConfig
from mer.merclip.prompts import TEMPLATES, PromptConfig, descriptions_for, for_recipe, prompt_aus, unphrased
from mer.merclip.recipes import augment_config, train_config
from mer.merclip.text import FrozenTextTower, PromptBank, load_clip_b16, tiny_clip
from mer.merclip.uniformerv2 import uniformerv2_config
from mer.protocols.clipset import ClipSet
from mer.zoo.api import refuse_unknown_options
from mer.zoo.deep import DeepEstimator

log = logging.getLogger("mer.merclip")


@dataclass(frozen=True)
class Variant:
    """One row of the papers' tables, as switches on the MER-CLIP recipe.

    Attributes:
        head: "transformer" (Emotion Transformer Head) or "linear".
        align: AU-guided (or emotion-guided) CLIP alignment on.
        progressive: Progressive loss weights (Eqs. 14–15); otherwise 1:1.
        lsfm: LocalStaticFaceMix on (the "DA" column, with AugMix).
        augmix: AugMix on.
        prompt_source: "aus" (AU descriptions) or "emotion" (Emo-guided CLIP: the class name).
        prompts: Prompt style, templates in use, AU order.
        lsfm_lambda: λ of LSFM (0.3 in the UniformerV2-only config).
    """

    head: str = "transformer"
    align: bool = True
    progressive: bool = True
    lsfm: bool = True
    augmix: bool = True
    prompt_source: str = "aus"
    prompts: PromptConfig = PromptConfig()
    lsfm_lambda: float = 0.5


def model_config(size: str, variant: Variant, onset_relative: bool | None = None) -> MerClipConfig:
    """Network config of ``size`` for ``variant``; ``onset_relative`` overrides the encoder's input
    form (None: the size's own, raw frames for ``base`` and onset-relative for ``tiny``)."""
    if size not in ("base", "tiny"):
        raise OptionValueError(f"unknown size {size!r} (base or tiny)")
    if onset_relative is not None and not isinstance(onset_relative, bool):
        # ``-o onset_relative=yes`` arrives as the string "yes": refuse it rather than read it as True
        raise OptionValueError(f"option onset_relative must be true or false, not {onset_relative!r}")
    overrides = {} if onset_relative is None else {"onset_relative": onset_relative}
    encoder = uniformerv2_config(size, **overrides)
    if size == "base":
        return MerClipConfig(encoder=encoder, head=variant.head, align=variant.align)
    return MerClipConfig(
        encoder=encoder,
        embed_dim=32,
        head=variant.head,
        head_dim=32,
        align=variant.align,
    )


def _load_init(model: MerClip, init: str) -> None:
    """Initialise the vision side from a local checkpoint: mer's own weights (a run, a zoo artifact), a
    reference MER-CLIP checkpoint, or a UniFormerV2 release (``.pyth`` / ``.pth``, any wrapper key and
    ``backbone.`` prefix), converted to this model's layout (:mod:`mer.zoo.convert`). What the converter
    found and adapted is logged; a tensor it cannot place is an error naming it."""
    from mer.zoo.convert import annotate, convert_uniformerv2_state, read_checkpoint_wrapped

    path = Path(init)
    state, skipped, wrappers = read_checkpoint_wrapped(path)
    own = model.state_dict()
    if any(k.startswith("visual.") for k in state):  # mer's own weights: a finished run, a zoo artifact
        converted = {
            k: v.reshape(()) if k in own and own[k].dim() == 0 and tuple(v.shape) == (1,) else v
            for k, v in state.items()
            if k.startswith(("visual.", "logit_scale"))
        }
        log.info("init from %s: %d tensors of a mer model (head and text not used)", path, len(converted))
    else:
        target = {k: v for k, v in own.items() if k.startswith("visual.")}
        report = annotate(convert_uniformerv2_state(state, target=target), skipped, wrappers)
        report.refuse_unmappable(str(path))
        converted = {k: v for k, v in report.converted.items() if not k.startswith("head.")}  # new classes
        log.info("init from %s:\n%s", path, report.summary())
    if not converted:
        raise ValueError(f"{path}: no tensor of this checkpoint is a UniFormerV2 / MER-CLIP vision weight")
    missing, unexpected = model.load_state_dict(converted, strict=False)
    if unexpected:
        raise ValueError(f"{path}: tensors with no place in the model: {unexpected[:5]}...")


def build_network(
    size: str,
    variant: Variant,
    num_classes: int,
    init: str | None = None,
    onset_relative: bool | None = None,
) -> MerClip:
    """The network at ``size``: ``base`` loads CLIP ViT-B/16 (text tower, and the inflated image weights
    unless ``init`` names a local checkpoint); ``tiny`` is random (CPU). ``onset_relative``: see
    :func:`model_config`."""
    cfg = model_config(size, variant, onset_relative)
    if size == "base":
        clip = load_clip_b16()
        visual_state = {k: v for k, v in clip.visual.state_dict().items()}
        text = FrozenTextTower(clip) if variant.align else None
        model = MerClip(cfg, num_classes, text)
        if init in (None, "clip"):
            missing, unexpected = model.visual.encoder.load_state_dict(
                inflate_clip_visual(visual_state), strict=False
            )
            if unexpected:
                raise BadInputError(f"CLIP weights with no place in UniformerV2: {unexpected[:5]}")
    else:
        text = FrozenTextTower(tiny_clip(embed_dim=cfg.embed_dim)) if variant.align else None
        model = MerClip(cfg, num_classes, text)
    if init not in (None, "clip", "random"):
        _load_init(model, init)
    return model


def _prompt_classes(
    clips: ClipSet, idx: np.ndarray, variant: Variant, prompts: PromptConfig, lookup: dict
) -> torch.Tensor:
    if variant.prompt_source == "emotion":
        return torch.as_tensor(np.asarray(clips.labels)[idx], dtype=torch.long)
    return torch.tensor([lookup[prompt_aus(clips.samples[i], prompts)] for i in idx], dtype=torch.long)


def build_estimator(
    variant: Variant,
    *,
    num_classes: int,
    size: str = "base",
    seed: int = 0,
    recipe: str = "paper",
    name: str = "merclip",
    device: str | None = None,
    work_dir: str | Path | None = None,
    init: str | None = None,
    epochs: int | None = None,
    balanced_sampler: bool = False,
    compile: bool = False,
    grad_checkpointing: bool = False,
    onset_relative: bool | None = None,
    **unknown: Any,
) -> DeepEstimator:
    """A MER-CLIP-family estimator (the ``build`` of every registered variant).

    Args:
        variant: The table row.
        num_classes: Emotion classes.
        size: "base" (the paper) or "tiny" (CPU).
        seed: Seeds initialisation and training.
        recipe: "paper" or "official".
        name: Registered name (messages, predictions).
        device: Torch device (default CUDA when available).
        work_dir: Per-fold checkpoint folder (resume).
        init: "clip" (base default), "random", or a local UniFormerV2 / MER-CLIP checkpoint file.
        epochs: Override the recipe's epoch count.
        balanced_sampler: Class-balanced sampling.
        compile: ``torch.compile`` the network for training (``-o compile=true``).
        grad_checkpointing: Activation checkpointing of the encoder blocks (large batches).
        onset_relative: Encoder input relative to the onset frame (``-o onset_relative=false`` trains
            tiny on raw frames, the ablation in benchmarks/RESULTS.md); None: the size's default.
    """
    refuse_unknown_options(name, unknown)
    torch.manual_seed(seed)
    model = build_network(size, variant, num_classes, init, onset_relative)
    cfg = train_config(recipe, size)
    cfg = replace(
        cfg,
        balanced_sampler=balanced_sampler,
        compile=compile,
        grad_checkpointing=grad_checkpointing,
        **({"epochs": epochs} if epochs else {}),
    )
    if epochs and cfg.warmup_epochs >= epochs:
        cfg = replace(cfg, warmup_epochs=max(0, epochs // 5))
    aug: AugmentConfig = augment_config(
        recipe, lsfm=variant.lsfm, augmix=variant.augmix, lsfm_lambda=variant.lsfm_lambda
    )
    enc = model.cfg.encoder
    prompts = for_recipe(variant.prompts, recipe)  # official: the sheet's AU order (merclip/PROMPTS.md)
    context: dict[str, Any] = {}

    def setup(est: DeepEstimator, train: ClipSet) -> None:
        if not variant.align:
            return
        if variant.prompt_source == "emotion":
            descriptions = [[c] for c in train.class_names]
        else:
            keys = sorted({prompt_aus(s, prompts) for s in train.samples}, key=repr)
            context["lookup"] = {k: i for i, k in enumerate(keys)}
            dataset = train.samples[0].dataset if train.samples else ""
            left_out = unphrased([a for k in keys for a in k], dataset)
            if left_out and prompts.style == "action":
                log.warning(
                    "prompts leave out AU%s (no action phrase; as the authors' maps do, merclip/PROMPTS.md)",
                    ", AU".join(map(str, left_out)),
                )
            descriptions = [descriptions_for(k, dataset, prompts, seed) for k in keys]
        text = est.model.text
        text.to(est.device)
        templates = TEMPLATES[: prompts.templates]
        context["bank"] = PromptBank(descriptions, templates, text).to(est.device)
        est.context["prompt_bank"] = context["bank"]

    def batch_fn(clips: ClipSet, idx: np.ndarray, train: bool, dev: torch.device) -> dict[str, Any]:
        frames = torch.from_numpy(clips.frames(idx)).to(dev)
        x = to_model_input(frames, enc.frames, enc.input_resolution, normalise=False)
        if train:
            rng = random.Random(int(torch.randint(2**31 - 1, (1,)).item()))
            video = augment_batch(x, aug, rng)
        else:
            video = normalise_clips(x).transpose(1, 2)
        batch: dict[str, Any] = {
            "video": video.contiguous(),
            "label": torch.as_tensor(np.asarray(clips.labels)[idx], dtype=torch.long, device=dev),
        }
        if train and variant.align:
            classes = _prompt_classes(clips, idx, variant, prompts, context.get("lookup", {}))
            batch["text"] = context["bank"].sample(classes)
        return batch

    def loss_fn(net: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        module = getattr(net, "module", net)
        out = net(batch["video"])
        cls = focal_loss(out["logits"], batch["label"])
        if not variant.align:
            return cls, {"cls": cls.item()}
        align = clip_loss(out["embedding"], batch["text"], module.logit_scale())
        w_clip, w_cls = progressive_weights(epoch, cfg.epochs) if variant.progressive else (1.0, 1.0)
        total = w_clip * align + w_cls * cls
        return total, {"clip": align.item(), "cls": cls.item(), "w_clip": w_clip}

    return DeepEstimator(
        model,
        loss_fn=loss_fn,
        batch_fn=batch_fn,
        setup_fn=setup,
        config=cfg,
        seed=seed,
        device=device,
        work_dir=work_dir,
        name=name,
    )
