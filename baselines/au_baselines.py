"""Reference rows of the micro-AU detection tables.

- ``au-majority``: each AU's majority state in the training fold (micro-AUs are rare, so in practice
  "never present": mean F1 0 unless an AU is present in over half of the training clips);
- ``au-chance``: each AU drawn at random with its training prevalence (seeded);
- ``au-clip-probe``: a linear probe (per-AU balanced logistic regression) on frozen CLIP image features
  of the apex and of the apex − onset feature difference; ``base`` = CLIP ViT-B/16 from the local cache,
  ``tiny`` = the tiny Micro-AU CLIP image tower with its random initialisation (a random-features probe);
- ``merclip-au``: MER-CLIP's UniformerV2 video encoder with a multi-label linear head (dropout 0.5, one
  logit per AU), weighted BCE, no text branch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from mer.baselines.microau_clip.config import PREPARE, Variant, network_config
from mer.baselines.microau_clip.estimators import MultiLabelEstimator
from mer.baselines.microau_clip.images import make_images
from mer.baselines.microau_clip.losses import positive_weights, weighted_bce
from mer.baselines.microau_clip.towers import build_towers
from mer.merclip.augment import to_model_input
from mer.merclip.estimator import Variant as MerClipVariant
from mer.merclip.estimator import build_network
from mer.merclip.recipes import PREPARE as MERCLIP_PREPARE
from mer.merclip.recipes import train_config
from mer.protocols.clipset import ClipSet
from mer.zoo.api import ModelSpec, Predictions, refuse_unknown_options, register_model


class AUPrior:
    """``au-majority`` / ``au-chance``: per-AU training prevalence.

    Args:
        num_classes: Number of AUs.
        seed: Seed of the chance draws.
        mode: "majority" or "chance".
    """

    def __init__(self, num_classes: int, seed: int = 0, mode: str = "majority") -> None:
        self.num_classes, self.seed, self.mode = num_classes, seed, mode
        self.prevalence = np.zeros(num_classes)

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        y = np.asarray(train.labels, np.float64)
        self.prevalence = y.mean(0) if len(y) else np.zeros(self.num_classes)

    def predict(self, test: ClipSet) -> Predictions:
        probs = np.tile(self.prevalence, (len(test), 1))
        if self.mode == "majority":
            labels = np.tile((self.prevalence > 0.5).astype(np.int64), (len(test), 1))
        else:
            labels = (np.random.default_rng(self.seed).random(probs.shape) < probs).astype(np.int64)
        return Predictions(labels, probs)

    def state_dict(self) -> dict[str, Any]:
        return {"prevalence": self.prevalence.copy()}


class CLIPProbe:
    """``au-clip-probe``: frozen image tower features → one balanced logistic regression per AU."""

    def __init__(self, num_classes: int, size: str = "base", seed: int = 0, c: float = 1.0) -> None:
        self.num_classes, self.size, self.seed, self.c = num_classes, size, seed, c
        torch.manual_seed(seed)
        self.cfg = replace(network_config(size, (1,), Variant()), input="apex")
        self.visual, _ = build_towers(size, self.cfg, need_text=False)
        self.visual.requires_grad_(False).eval()
        self.models: list[Any] = []

    @torch.no_grad()
    def features(self, clips: ClipSet, batch: int = 64) -> np.ndarray:
        """``[N, 2E]``: the apex embedding and its difference from the onset embedding."""
        out = []
        for i in range(0, len(clips), batch):
            frames = torch.from_numpy(clips.frames(np.arange(i, min(i + batch, len(clips)))))
            apex = self.visual(make_images(frames, self.cfg))
            onset = self.visual(make_images(frames[:, [0] * frames.shape[1]], self.cfg))
            out.append(torch.cat([apex, apex - onset], 1).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2 * self.cfg.embed_dim))

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x, y = self.features(train), np.asarray(train.labels)
        self.models = []
        for k in range(self.num_classes):
            if y[:, k].min() == y[:, k].max():  # one state only: predict it
                self.models.append(float(y[0, k]) if len(y) else 0.0)
                continue
            clf = make_pipeline(
                StandardScaler(), LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000)
            )
            self.models.append(clf.fit(x, y[:, k]))

    def predict(self, test: ClipSet) -> Predictions:
        x = self.features(test)
        probs = np.stack(
            [np.full(len(x), m) if isinstance(m, float) else m.predict_proba(x)[:, 1] for m in self.models], 1
        )
        return Predictions((probs >= 0.5).astype(np.int64), probs)

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, m in enumerate(self.models):
            if not isinstance(m, float):
                scaler, lr = m[0], m[1]
                out[f"au{k}.mean"], out[f"au{k}.scale"] = scaler.mean_, scaler.scale_
                out[f"au{k}.coef"], out[f"au{k}.intercept"] = lr.coef_, lr.intercept_
        return out


def build_merclip_au(
    num_classes: int, size: str = "base", seed: int = 0, epochs: int | None = None, device: str | None = None,
    **unknown: Any,
) -> MultiLabelEstimator:  # fmt: skip
    """``merclip-au``: MER-CLIP's encoder (CLIP-initialised at ``base``) with a K-logit linear head."""
    refuse_unknown_options("merclip-au", unknown)
    torch.manual_seed(seed)
    model = build_network(size, MerClipVariant(head="linear", align=False), num_classes)
    cfg = train_config("paper", size)
    if epochs:
        cfg = replace(cfg, epochs=epochs, warmup_epochs=min(cfg.warmup_epochs, max(0, epochs // 5)))
    enc = model.cfg.encoder
    ctx: dict[str, Any] = {}

    def setup(est: MultiLabelEstimator, train: ClipSet) -> None:
        ctx["pos_weight"] = positive_weights(torch.as_tensor(np.asarray(train.labels))).to(est.device)

    def batch_fn(clips: ClipSet, idx: np.ndarray, train: bool, dev: torch.device) -> dict[str, Any]:
        x = to_model_input(torch.from_numpy(clips.frames(idx)).to(dev), enc.frames, enc.input_resolution)
        if train:
            flip = torch.rand(len(idx), device=dev) < 0.5
            x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
        batch: dict[str, Any] = {"video": x.transpose(1, 2).contiguous()}
        if train:
            batch["target"] = torch.as_tensor(np.asarray(clips.labels)[idx], dtype=torch.float32, device=dev)
        return batch

    def loss_fn(net: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss = weighted_bce(net(batch["video"])["logits"], batch["target"], ctx["pos_weight"])
        return loss, {"bce": loss.item()}

    return MultiLabelEstimator(
        model, loss_fn=loss_fn, batch_fn=batch_fn, setup_fn=setup, config=cfg, seed=seed, device=device,
        name="merclip-au",
    )  # fmt: skip


def _prior(mode: str):
    def build(num_classes: int, size: str = "base", seed: int = 0) -> AUPrior:
        return AUPrior(num_classes, seed, mode)

    return build


def _probe(num_classes: int, size: str = "base", seed: int = 0, c: float = 1.0) -> CLIPProbe:
    return CLIPProbe(num_classes, size, seed, c)


_TINY = {"base": {"frames": 3, "size": 32}}  # the prior models read no pixels
for _name, _mode, _desc in (
    ("au-majority", "majority", "each AU's majority state in the training fold"),
    ("au-chance", "chance", "each AU drawn with its training prevalence"),
):
    register_model(
        ModelSpec(_name, _prior(_mode), ("base",), _desc, family="reference", recipe=_TINY, task="au")
    )
register_model(
    ModelSpec(
        "au-clip-probe", _probe, ("base", "tiny"), "linear probe per AU on frozen CLIP image features",
        family="deep", recipe=PREPARE, task="au",
    )
)  # fmt: skip
register_model(
    ModelSpec(
        "merclip-au", build_merclip_au, ("base", "tiny"), "MER-CLIP's encoder + multi-label linear head",
        family="deep", recipe=MERCLIP_PREPARE, task="au",
    )
)  # fmt: skip
