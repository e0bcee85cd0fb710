"""Micro-AU CLIP estimators (reconstruction from the abstract, SPEC B): AU detection and label-free MER.

``base`` loads CLIP ViT-B/16 (image and text towers) from the local Hugging Face cache only; ``tiny``
builds a small open_clip ViT image tower (64 px, patch 8) and a small text tower with random weights,
so that it runs on a CPU and learns SynthME from scratch. Training (SPEC B.5, assumed): AdamW with the
shared loop; one learning rate for the whole network (the loop has a single LR; B.5 assumes 1e-5 for
the backbone and 1e-4 for new modules, 3e-5 is used for both at ``base``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer.baselines.microau_clip.config import (
    DEFAULT_VOCABULARY,
    Variant,
    network_config,
    train_recipe,
)
from mer.baselines.microau_clip.emotions import class_prototypes, rule_scores, softmax_rows
from mer.baselines.microau_clip.images import make_images
from mer.baselines.microau_clip.losses import (
    cooccurrence_target,
    gd_loss,
    miaucl,
    positive_weights,
    weighted_bce,
)
from mer.baselines.microau_clip.model import MicroAUClip
from mer.baselines.microau_clip.towers import au_anchor_features, build_towers, combination_text
from mer.errors import OptionValueError
from mer.merclip.losses import clip_loss
from mer.merclip.prompts import TEMPLATES
from mer.merclip.text import FrozenTextTower, PromptBank
from mer.protocols.au_metrics import au_detection_metrics
from mer.protocols.au_protocols import DATASET_AUS, au_names, au_targets, present_aus
from mer.protocols.clipset import ClipSet
from mer.zoo.api import Predictions, refuse_unknown_options
from mer.zoo.deep import DeepEstimator
from mer.zoo.threads import ThreadLimitedEstimator


class MultiLabelEstimator(ThreadLimitedEstimator):
    """:class:`DeepEstimator` for multi-label AU detection: a sigmoid per AU, present at p ≥ 0.5;
    ``--select oracle`` keeps the epoch with the best mean F1 on ``val``.

    It takes :class:`ThreadLimitedEstimator`'s CPU thread control: the tiny networks are
    overhead-bound, and on a busy CPU intra-op threads spin-wait (a 3-fold tiny run took 7 min with
    2 threads under load).
    """

    def validation_score(self, val: ClipSet) -> float:
        """Mean per-AU F1 on ``val`` (AUs present at p ≥ 0.5)."""
        pred = (self._logits(val).sigmoid().numpy() >= 0.5).astype(np.int64)
        return au_detection_metrics(np.asarray(val.labels), pred, val.class_names)["mean_f1"]

    @torch.no_grad()
    def outputs(self, clips: ClipSet, key: str) -> torch.Tensor:
        """One entry of the network's output dict over ``clips`` (e.g. the global ``embedding``)."""
        self.model.eval()
        out, bs = [], self.config.eval_batch_size
        with self._threads():
            for i in range(0, len(clips), bs):
                batch = self.batch_fn(clips, np.arange(i, min(i + bs, len(clips))), False, self.device)
                out.append(self.model(batch["image"])[key].float().cpu())
        return torch.cat(out)

    def predict(self, test: ClipSet) -> Predictions:
        with self._threads():
            probs = self._logits(test).sigmoid().numpy()
        return Predictions((probs >= 0.5).astype(np.int64), probs, extras={"model": self.name, **self.info})


def build_au_estimator(
    variant: Variant,
    *,
    num_classes: int,
    size: str = "base",
    seed: int = 0,
    aus: tuple[int, ...] | None = None,
    name: str = "microau-clip",
    epochs: int | None = None,
    device: str | None = None,
    work_dir: str | Path | None = None,
    cpu_threads: int | None = 1,
    **unknown: Any,
) -> MultiLabelEstimator:
    """A Micro-AU CLIP estimator (the ``build`` of every registered AU variant).

    Args:
        variant: Component switches.
        num_classes: Number of AUs (the protocol's classes).
        size: "base" (CLIP ViT-B/16 from the local cache) or "tiny" (random, CPU).
        seed: Seeds initialisation and training.
        aus: AU numbers in class order (default: read from the training set's class names "AU12").
        name: Registered name (messages).
        epochs: Override the recipe's epoch count.
        device: Torch device (default CUDA when available).
        work_dir: Per-fold checkpoint folder (resume).
        cpu_threads: Torch threads on a CPU (None: leave as is).
    """
    refuse_unknown_options(name, unknown)
    torch.manual_seed(seed)
    cfg_box: dict[str, Any] = {}
    ctx: dict[str, Any] = {}

    def make_model(au_list: tuple[int, ...]) -> MicroAUClip:
        cfg = network_config(size, au_list, variant)
        visual, text = build_towers(size, cfg, variant.miaucl or variant.combination_prompts)
        ctx["text"] = text
        cfg_box["cfg"] = cfg
        return MicroAUClip(cfg, visual, pretrained_visual=size == "base")

    # The network needs the AU list; built now when given, else at setup from the class names.
    model = make_model(aus) if aus is not None else nn.Identity()

    def setup(est: DeepEstimator, train: ClipSet) -> None:
        au_list = tuple(int(c.removeprefix("AU")) for c in train.class_names)
        if len(au_list) != num_classes:
            raise ValueError(f"{name}: built for {num_classes} AUs, the training set has {len(au_list)}")
        if "cfg" not in cfg_box or cfg_box["cfg"].aus != au_list:
            torch.manual_seed(seed)
            est.model = make_model(au_list).to(est.device)
        net: MicroAUClip = est.model  # type: ignore[assignment]
        targets = torch.as_tensor(np.asarray(train.labels), dtype=torch.float32)
        ctx["pos_weight"] = positive_weights(targets).to(est.device)
        net.cooccurrence.copy_(cooccurrence_target(targets).to(est.device))
        text: FrozenTextTower | None = ctx["text"]
        if text is not None:
            text.to(est.device)
        if variant.miaucl:
            net.set_anchors(*au_anchor_features(text, au_list))
        if variant.combination_prompts:
            dataset = train.samples[0].dataset if train.samples else ""
            keys = sorted({combination_text(present_aus(s), au_list, dataset) for s in train.samples})
            ctx["lookup"] = {k: i for i, k in enumerate(keys)}
            ctx["bank"] = PromptBank([[k] for k in keys], TEMPLATES[:7], text).to(est.device)
            ctx["dataset"] = dataset

    def batch_fn(clips: ClipSet, idx: np.ndarray, train: bool, dev: torch.device) -> dict[str, Any]:
        frames = torch.from_numpy(clips.frames(idx)).to(dev)
        flip = torch.rand(len(idx), device=dev) < 0.5 if train else None
        batch: dict[str, Any] = {"image": make_images(frames, cfg_box["cfg"], flip).contiguous()}
        if train:  # test labels are never read (a label-free model's test set has emotion labels)
            batch["target"] = torch.as_tensor(np.asarray(clips.labels)[idx], dtype=torch.float32, device=dev)
            if variant.combination_prompts:
                au_list = cfg_box["cfg"].aus
                keys = [combination_text(present_aus(clips.samples[i]), au_list, ctx["dataset"]) for i in idx]
                batch["text"] = ctx["bank"].sample(torch.tensor([ctx["lookup"][k] for k in keys]))
        return batch

    def loss_fn(net: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        module: MicroAUClip = getattr(net, "module", net)
        out = net(batch["image"])
        y = batch["target"]
        loss = weighted_bce(out["logits"], y, ctx["pos_weight"])
        terms = {"bce": loss.item()}
        if variant.miaucl:
            term = miaucl(out["text_logits"], y)
            loss, terms["miaucl"] = loss + term, term.item()
        if variant.gda and variant.gdloss:
            term = gd_loss(out["gda_attn"], module.cooccurrence)
            loss, terms["gdloss"] = loss + term, term.item()
        if variant.combination_prompts:
            term = clip_loss(out["embedding"], batch["text"], module.scale())
            loss, terms["combination"] = loss + term, term.item()
        return loss, terms

    est = MultiLabelEstimator(
        model, loss_fn=loss_fn, batch_fn=batch_fn, logits_fn=lambda m, b: m(b["image"])["logits"],
        setup_fn=setup, config=train_recipe(size, epochs), seed=seed, device=device, work_dir=work_dir,
        name=name,
    )  # fmt: skip
    est.context = ctx
    est.cpu_threads = cpu_threads
    return est


class LabelFreeMER:
    """Emotion-label-free MER (reconstruction, SPEC B.3.7): a Micro-AU CLIP detector trained on the
    training fold's **AU labels only**, its AU predictions mapped to the protocol's emotion classes.

    The emotion labels of the training fold are replaced by AU targets before anything reaches the
    network, so they cannot leak into training. ``--select oracle`` is ignored (it would need emotion
    labels of the test fold).

    Args:
        num_classes: Emotion classes of the protocol.
        size: Detector size.
        seed: Seed.
        scorer: "rule" (EMFACS-style prototypes on the AU probabilities) or "prompts" (emotion prompts
            composed of AU phrases against the global embedding).
        vocabulary: AUs to detect (default: the dataset's AU protocol set).
        **options: Passed to :func:`build_au_estimator` (epochs, device, work_dir).
    """

    def __init__(
        self,
        num_classes: int,
        size: str = "base",
        seed: int = 0,
        scorer: str = "rule",
        vocabulary: tuple[int, ...] | None = None,
        name: str = "microau-clip-labelfree",
        **options: Any,
    ) -> None:
        if scorer not in ("rule", "prompts"):
            raise OptionValueError(f"scorer must be 'rule' or 'prompts', not {scorer!r}")
        self.num_classes, self.size, self.seed, self.scorer = num_classes, size, seed, scorer
        self.vocabulary, self.name, self.options = vocabulary, name, options
        self.detector: MultiLabelEstimator | None = None
        self.classes: tuple[str, ...] = ()
        self.prompt_features: list[torch.Tensor] = []

    def au_view(self, clips: ClipSet, with_targets: bool) -> ClipSet:
        """``clips`` with AU targets (or zeros) in place of the emotion labels."""
        assert self.vocabulary is not None
        if with_targets:
            targets_of = au_targets(self.vocabulary)
            y = (
                np.stack([targets_of(s) for s in clips.samples])
                if len(clips)
                else np.zeros((0, len(self.vocabulary)))
            )
        else:
            y = np.zeros((len(clips), len(self.vocabulary)), dtype=np.int64)
        return ClipSet(
            clips.store, clips.rows, clips.samples, y.astype(np.int64), au_names(self.vocabulary), clips.flows
        )

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        if len(train.class_names) != self.num_classes:
            raise OptionValueError(
                f"{self.name}: {self.num_classes} classes expected, got {train.class_names}"
            )
        dataset = train.samples[0].dataset if train.samples else ""
        self.vocabulary = self.vocabulary or DATASET_AUS.get(dataset, DEFAULT_VOCABULARY)
        self.classes = tuple(train.class_names)
        class_prototypes(self.classes, self.vocabulary)  # fails early on a class with no prototype
        variant = Variant(combination_prompts=self.scorer == "prompts")
        self.detector = build_au_estimator(
            variant, num_classes=len(self.vocabulary), size=self.size, seed=self.seed, aus=self.vocabulary,
            name=self.name, **self.options,
        )  # fmt: skip
        self.detector.fit(self.au_view(train, with_targets=True))
        if self.scorer == "prompts":
            text: FrozenTextTower = self.detector.context["text"]
            self.prompt_features = []
            for protos in class_prototypes(self.classes, self.vocabulary):
                texts = [t for p in protos for t in self._prompts(p, dataset)]
                feats = F.normalize(text.encode(texts).float().cpu(), dim=-1) if texts else torch.zeros(0, 1)
                self.prompt_features.append(feats.reshape(len(protos), 7, -1).mean(1) if texts else feats)

    def _prompts(self, proto: tuple[int, ...], dataset: str) -> list[str]:
        assert self.vocabulary is not None
        return [t.format(combination_text(set(proto), self.vocabulary, dataset)) for t in TEMPLATES[:7]]

    def predict(self, test: ClipSet) -> Predictions:
        if self.detector is None or self.vocabulary is None:
            raise RuntimeError(f"{self.name}: predict before fit")
        view = self.au_view(test, with_targets=False)
        au_probs = self.detector.predict(view).probs
        if self.scorer == "rule":
            scores = rule_scores(au_probs, self.vocabulary, self.classes)
        else:
            emb = F.normalize(self.detector.outputs(view, "embedding"), dim=-1)
            scale = float(self.detector.model.scale().detach())  # type: ignore[operator]
            scores = np.full((len(test), len(self.classes)), -np.inf)
            for c, feats in enumerate(self.prompt_features):
                if len(feats):
                    scores[:, c] = (scale * emb @ F.normalize(feats, dim=-1).t()).max(1).values.numpy()
        probs = softmax_rows(scores)
        return Predictions(probs.argmax(1), probs, extras={"model": self.name, "au_probs": au_probs})

    def state_dict(self) -> dict[str, Any]:
        return self.detector.state_dict() if self.detector is not None else {}


def labelfree_builder(scorer: str, name: str):
    """A builder of :class:`LabelFreeMER` with the given emotion ``scorer`` ("rule" or "prompts")."""

    def build(
        num_classes: int,
        size: str = "base",
        seed: int = 0,
        vocabulary: tuple[int, ...] | None = None,
        epochs: int | None = None,
        device: str | None = None,
        work_dir: str | None = None,
        cpu_threads: int | None = 1,
    ) -> LabelFreeMER:
        """Args:
        vocabulary: AU numbers the detector learns (default: the dataset's AU protocol list).
        epochs: Override the AU detector's epoch count.
        device: Torch device (default CUDA when available).
        work_dir: Per-fold checkpoint folder (resume).
        cpu_threads: Torch threads on a CPU (None: leave as is).
        """
        options = {"epochs": epochs, "device": device, "work_dir": work_dir, "cpu_threads": cpu_threads}
        return LabelFreeMER(
            num_classes, size, seed, scorer=scorer, vocabulary=vocabulary, name=name, **options
        )

    return build
