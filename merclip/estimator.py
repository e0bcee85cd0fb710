"""Assemble a MER-CLIP-family :class:`~mer.zoo.deep.DeepEstimator`: network, text cache, batch
transform (augmentation on the device) and the progressive loss."""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mer.errors import BadInputError, OptionValueError
from mer.merclip.augment import AugmentConfig, augment_batch, normalise_clips, to_model_input
from mer.merclip.convert import inflate_clip_visual
from mer.merclip.losses import clip_loss, focal_loss, progressive_weights
from mer.merclip.model import MerClip, MerClipConfig
from mer.merclip.prompts import TEMPLATES, PromptConfig, descriptions_for, for_recipe, prompt_aus, unphrased
from mer.merclip.recipes import Training, resolve_training
from mer.merclip.text import (
    TEXT_TOWERS,
    FrozenTextTower,
    PromptBank,
    load_clip_b16,
    load_viclip_text,
    tiny_clip,
)
from mer.merclip.uniformerv2 import uniformerv2_config
from mer.protocols.clipset import ClipSet
from mer.zoo.api import ModelPlan, refuse_unknown_options
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


def model_config(
    size: str,
    variant: Variant,
    onset_relative: bool | None = None,
    drop_path: tuple[float, float] | None = None,
) -> MerClipConfig:
    """Network config of ``size`` for ``variant``; ``onset_relative`` overrides the encoder's input
    form (None: the size's own, raw frames for ``base`` and onset-relative for ``tiny``), ``drop_path``
    the backbone / global-block drop path (None: the size's own)."""
    if size not in ("base", "tiny"):
        raise OptionValueError(f"unknown size {size!r} (base or tiny)")
    if onset_relative is not None and not isinstance(onset_relative, bool):
        # ``-o onset_relative=yes`` arrives as the string "yes": refuse it rather than read it as True
        raise OptionValueError(f"option onset_relative must be true or false, not {onset_relative!r}")
    overrides: dict[str, Any] = {} if onset_relative is None else {"onset_relative": onset_relative}
    if drop_path is not None:
        overrides.update(backbone_drop_path=drop_path[0], global_drop_path=drop_path[1])
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
        raise BadInputError(f"{path}: no tensor of this checkpoint is a UniFormerV2 / MER-CLIP vision weight")
    missing, unexpected = model.load_state_dict(converted, strict=False)
    if unexpected:
        raise BadInputError(f"{path}: tensors with no place in the model: {unexpected[:5]}...")


def check_init(size: str, init: str | None) -> None:
    """Refuse an ``--init`` the network of ``size`` cannot start from (rather than ignore it).

    ``tiny`` (a 64-wide encoder trained from scratch on the CPU) starts from random weights or from a
    mer model of size tiny; CLIP ViT-B/16 and UniFormerV2-B/16 checkpoints fit size base only.

    Raises:
        ValueError: naming the init and the size.
    """
    if size != "tiny" or init in (None, "random"):
        return
    from mer.zoo.init import init_provenance

    made_by = init_provenance(init)
    if made_by is not None and made_by.get("size") == "tiny":
        return
    if made_by is None and init != "clip" and Path(init).is_file():
        # A raw UniFormerV2 / MER-CLIP checkpoint fits tiny only if the converter places every tensor
        # (a B/16 release does not: its shapes are named).
        from mer.merclip.convert import ConversionError
        from mer.zoo.convert import convert_checkpoint

        try:
            convert_checkpoint(init, "uniformerv2", size).refuse_unmappable(init)
        except ConversionError as e:  # the checkpoint is the problem: an input error, keys named
            raise ConversionError(
                f"--init at size tiny: {e}. A B/16 checkpoint needs --size base (or use --init random)"
            ) from e
        return
    what = (
        "CLIP ViT-B/16 image weights"
        if init == "clip"
        else f"{init} ({(made_by or {}).get('size') or 'a B/16 checkpoint'})"
    )
    raise OptionValueError(
        f"--init {init}: size tiny cannot start from {what}; its encoder is 64 wide and trains from "
        "random weights. Use --size base, or --init random / a run of size tiny"
    )


def check_text(size: str, text: str = "clip", viclip_path: str | None = None) -> None:
    """Refuse a text tower ``size`` cannot use: only ``clip`` / ``viclip``, ``viclip`` at base only.

    Raises:
        OptionValueError: naming the option.
    """
    if text not in TEXT_TOWERS:
        raise OptionValueError(f"option text must be one of {', '.join(TEXT_TOWERS)}, not {text!r}")
    if viclip_path and text != "viclip":
        raise OptionValueError("option viclip_path is only used with -o text=viclip")
    if size != "base" and text != "clip":
        raise OptionValueError(
            f"-o text={text}: size {size} uses a small random text tower; "
            "the ViCLIP-B tower needs --size base"
        )


def build_network(
    size: str,
    variant: Variant,
    num_classes: int,
    init: str | None = None,
    onset_relative: bool | None = None,
    drop_path: tuple[float, float] | None = None,
    text: str = "clip",
    viclip_path: str | None = None,
) -> MerClip:
    """The network at ``size``: ``base`` loads CLIP ViT-B/16 (the inflated image weights unless ``init``
    names a local checkpoint; the text tower unless ``text="viclip"``, which reads the ViCLIP-B text
    tower from ``viclip_path``); ``tiny`` is random (CPU). ``onset_relative`` and ``drop_path``: see
    :func:`model_config`.

    Raises:
        OptionValueError: an ``init`` that size cannot use (:func:`check_init`), an unknown text tower or
            ``viclip`` at size tiny (:func:`check_text`).
        MissingWeightsError: CLIP or ViCLIP weights not on this machine (the message says what to fetch).
    """
    check_init(size, init)
    check_text(size, text, viclip_path)
    if not variant.align and (text != "clip" or viclip_path):
        raise OptionValueError(
            f"-o text={text}: this model has no text branch (no AU alignment), so it cannot use a text tower"
        )
    cfg = model_config(size, variant, onset_relative, drop_path)
    if size == "base":
        clip = load_clip_b16() if init in (None, "clip") or (variant.align and text == "clip") else None
        tower = None
        if variant.align and text == "viclip":
            viclip, notes = load_viclip_text(viclip_path)
            log.info("text tower: ViCLIP-B from %s (%s)", viclip_path, "; ".join(notes))
            tower = FrozenTextTower(viclip)
        elif variant.align:
            tower = FrozenTextTower(clip)
        visual_state = dict(clip.visual.state_dict()) if clip is not None and clip.visual is not None else {}
        model = MerClip(cfg, num_classes, tower)
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


def variant_training(
    variant: Variant,
    recipe: str,
    size: str,
    protocol: str | None,
    init: str | None,
    epochs: int | None = None,
    balanced_sampler: bool | None = None,
) -> Training:
    """The resolved recipe of ``variant`` (:func:`~mer.merclip.recipes.resolve_training`); a run that
    starts from a model trained on DFME follows the authors' ``*_dfme-pre`` configs."""
    from mer.zoo.init import init_provenance

    made_by = init_provenance(init) or {}
    return resolve_training(
        recipe,
        size,
        protocol,
        lsfm=variant.lsfm,
        augmix=variant.augmix,
        lsfm_lambda=variant.lsfm_lambda,
        after_dfme=str(made_by.get("protocol") or "").startswith("dfme-"),
        epochs=epochs,
        balanced_sampler=balanced_sampler,
    )


def plan_estimator(
    variant: Variant, *, size: str, protocol: str, options: dict[str, Any], name: str = "merclip"
) -> ModelPlan:
    """What :func:`build_estimator` will do with ``options`` on ``protocol`` at ``size``, without
    building anything (``mer bench run --dry-run``). Refuses what the builder would refuse."""
    import inspect

    known = set(inspect.signature(build_estimator).parameters) - {"variant", "unknown"}
    refuse_unknown_options(name, set(options) - known)
    init = options.get("init")
    check_init(size, init)
    check_text(size, options.get("text", "clip"), options.get("viclip_path"))
    if not variant.align and ("text" in options or "viclip_path" in options):
        raise OptionValueError(
            f"-o text={options.get('text', 'clip')}: {name} has no text branch (no AU alignment), so it "
            "cannot use a text tower"
        )
    onset_relative = options.get("onset_relative")
    model_config(size, variant, onset_relative)  # refuses a bad onset_relative as the builder does
    training = variant_training(
        variant,
        options.get("recipe", "paper"),
        size,
        protocol,
        init,
        options.get("epochs"),
        options.get("balanced_sampler"),
    )
    desc = training.describe(progressive=variant.progressive, align=variant.align)
    desc["head"] = variant.head
    prompts = for_recipe(variant.prompts, options.get("recipe", "paper"))
    desc["prompts"] = {"source": variant.prompt_source, **asdict(prompts)} if variant.align else None
    if variant.align:
        desc["text"] = options.get("text", "clip") if size == "base" else "tiny (random, CPU)"
        if options.get("viclip_path"):
            from mer.protocols.io import file_sha256

            viclip = Path(options["viclip_path"])
            desc["viclip_path"] = str(viclip)
            desc["viclip_sha256"] = file_sha256(viclip) if viclip.is_file() else None
    else:
        desc["text"] = None
    from mer.zoo.init import describe_checkpoint, describe_init

    init_record = describe_init(init, "clip" if size == "base" else "random")
    checkpoint = describe_checkpoint(init, size)  # a raw release: its source and the conversion's notes
    if checkpoint is not None:
        init_record["checkpoint"] = checkpoint
    return ModelPlan(
        preparation=dict(training.preparation),
        training=desc,
        init=init_record,
        notes=list(training.notes),
    )


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
    balanced_sampler: bool | None = None,
    protocol: str | None = None,
    compile: bool = False,
    grad_checkpointing: bool = False,
    onset_relative: bool | None = None,
    text: str = "clip",
    viclip_path: str | None = None,
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
        balanced_sampler: Class-balanced sampling (None: as the recipe has it).
        protocol: The protocol trained on (the runner passes it): ``official`` follows that dataset's
            config (SPEC A.5b).
        compile: ``torch.compile`` the network for training (``-o compile=true``).
        grad_checkpointing: Activation checkpointing of the encoder blocks (large batches).
        onset_relative: Encoder input relative to the onset frame (``-o onset_relative=false`` trains
            tiny on raw frames, the ablation in benchmarks/RESULTS.md); None: the size's default.
        text: Frozen text tower, ``clip`` (open_clip ViT-B-16 / openai, the default) or ``viclip`` (the
            authors' ViCLIP-B text tower, base only); recorded with the run's options.
        viclip_path: The local ViCLIP-B file for ``text="viclip"`` (``ViCLIP-B_InternVid-FLT-10M.pth``).
    """
    refuse_unknown_options(name, unknown)
    torch.manual_seed(seed)
    training = variant_training(variant, recipe, size, protocol, init, epochs, balanced_sampler)
    for note in training.notes:
        log.info("%s: %s", name, note)
    model = build_network(
        size, variant, num_classes, init, onset_relative, training.drop_path, text, viclip_path
    )
    cfg = replace(training.train, compile=compile, grad_checkpointing=grad_checkpointing)
    aug: AugmentConfig = training.augment
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
        w_clip, w_cls = (
            progressive_weights(epoch, cfg.epochs, w0=training.w0) if variant.progressive else (1.0, 1.0)
        )
        total = w_clip * align + w_cls * cls
        return total, {"clip": align.item(), "cls": cls.item(), "w_clip": w_clip, "w_cls": w_cls}

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
