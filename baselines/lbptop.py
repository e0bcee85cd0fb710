"""LBP-TOP + linear SVM (Zhao & Pietikäinen 2007; the "LBP-TOP" row of MER-CLIP's Table V).

Uniform LBP codes (P = 8, R = 1, 59 non-rotation-invariant uniform patterns) on the three orthogonal
planes of the clip: XY (appearance, every frame), XT and YT (how each row and column changes over
time). Codes are histogrammed per block of a 5×5 face grid over the whole clip, each histogram
L1-normalised, all concatenated; a linear SVM with balanced class weights classifies them.

``lbp-apex-svm`` is the same pipeline on the XY plane of the apex frame alone: a model blind to
motion, kept to show how much the temporal planes add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from skimage.feature import local_binary_pattern
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mer.errors import BadInputError
from mer.protocols.clipset import ClipSet
from mer.zoo.api import ModelSpec, Predictions, refuse_unknown_options, register_model

N_BINS = 59  # P(P-1) + 3 uniform patterns for P = 8


@dataclass(frozen=True)
class LBPTOPConfig:
    """Feature and classifier settings.

    Attributes:
        grid: Blocks per side of the face grid.
        radius: LBP radius in pixels (P = 8 neighbours).
        planes: "top" (XY, XT, YT over the clip) or "apex" (XY of the apex frame only).
        c: SVM regularisation.
        batch: Clips read from the cache at once.
    """

    grid: int = 5
    radius: int = 1
    planes: str = "top"
    c: float = 0.1
    batch: int = 64


def _codes(img2d: np.ndarray, radius: int) -> np.ndarray:
    return local_binary_pattern(np.ascontiguousarray(img2d), 8, radius, method="nri_uniform").astype(np.int64)


def _block_hist(codes: np.ndarray, grid: int) -> np.ndarray:
    """Per-block histograms of a code volume ``[T, H, W]`` → ``[grid * grid * N_BINS]``."""
    _, h, w = codes.shape
    ys = np.minimum(np.arange(h) * grid // h, grid - 1)
    xs = np.minimum(np.arange(w) * grid // w, grid - 1)
    block = (ys[:, None] * grid + xs[None, :])[None].repeat(codes.shape[0], 0)
    hist = np.bincount((block * N_BINS + codes).ravel(), minlength=grid * grid * N_BINS).astype(np.float64)
    hist = hist.reshape(grid * grid, N_BINS)
    hist /= np.maximum(hist.sum(1, keepdims=True), 1)
    return hist.ravel()


def lbptop_features(clip: np.ndarray, cfg: LBPTOPConfig) -> np.ndarray:
    """LBP-TOP (or apex-only LBP) histogram of one clip ``[T, H, W, 3]`` uint8."""
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip])  # uint8: exact LBP comparisons
    t, h, w = grey.shape
    if cfg.planes == "apex":
        return _block_hist(_codes(grey[t // 2], cfg.radius)[None], cfg.grid)
    xy = np.stack([_codes(grey[i], cfg.radius) for i in range(t)])
    xt = np.stack([_codes(grey[:, y, :], cfg.radius) for y in range(h)], axis=1)  # [T, H, W]
    yt = np.stack([_codes(grey[:, :, x], cfg.radius) for x in range(w)], axis=2)  # [T, H, W]
    return np.concatenate([_block_hist(c, cfg.grid) for c in (xy, xt, yt)])


_FEATURES: dict[tuple[str, int, LBPTOPConfig], np.ndarray] = {}


class LBPTOPSVM:
    """The estimator: features from the cache, a standardised linear SVM on top."""

    def __init__(self, num_classes: int, seed: int = 0, config: LBPTOPConfig | None = None) -> None:
        self.num_classes = num_classes
        self.seed = seed
        self.cfg = config or LBPTOPConfig()
        self.clf = None

    def features(self, clips: ClipSet) -> np.ndarray:
        """Features of every clip; each (cache, row, config) is computed once per process, since LOSO
        folds re-use the same clips dozens of times."""
        source = str(getattr(clips.store, "filename", id(clips.store)))
        missing = [i for i, r in enumerate(clips.rows) if (source, int(r), self.cfg) not in _FEATURES]
        for start in range(0, len(missing), self.cfg.batch):
            idx = np.asarray(missing[start : start + self.cfg.batch])
            for i, clip in zip(idx, clips.frames(idx), strict=True):
                _FEATURES[(source, int(clips.rows[i]), self.cfg)] = lbptop_features(clip, self.cfg)
        return np.stack([_FEATURES[(source, int(r), self.cfg)] for r in clips.rows])

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        x = self.features(train)
        self.clf = make_pipeline(
            StandardScaler(),
            LinearSVC(C=self.cfg.c, class_weight="balanced", random_state=self.seed, max_iter=5000),
        )
        self.clf.fit(x, train.labels)

    def predict(self, test: ClipSet) -> Predictions:
        if self.clf is None:
            raise RuntimeError("predict() before fit()")
        scores = self.clf.decision_function(self.features(test))
        if scores.ndim == 1:  # binary SVM: one margin
            scores = np.stack([-scores, scores], 1)
        full = np.full((len(test), self.num_classes), -1e9)
        full[:, self.clf.classes_] = scores  # classes absent from training keep no mass
        z = np.exp(full - full.max(1, keepdims=True))
        probs = z / z.sum(1, keepdims=True)
        return Predictions(probs.argmax(1), probs)

    def state_dict(self) -> dict[str, Any]:
        if self.clf is None:
            return {}
        scaler, svm = self.clf[0], self.clf[1]
        return {
            "scaler.mean": scaler.mean_,
            "scaler.scale": scaler.scale_,
            "svm.coef": svm.coef_,
            "svm.intercept": svm.intercept_,
            "svm.classes": svm.classes_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild the fitted scaler + SVM from :meth:`state_dict`'s arrays (a zoo artifact, a run's weights).

        Raises:
            ValueError: a tensor is missing or the shapes disagree.
        """
        need = ("scaler.mean", "scaler.scale", "svm.coef", "svm.intercept", "svm.classes")
        missing = [k for k in need if k not in state]
        if missing:
            raise BadInputError(f"LBP-TOP state lacks {', '.join(missing)}")
        mean, scale = (np.asarray(state[k], dtype=np.float64) for k in need[:2])
        coef, intercept = (
            np.asarray(state["svm.coef"], np.float64),
            np.asarray(state["svm.intercept"], np.float64),
        )
        classes = np.asarray(state["svm.classes"]).astype(np.int64)
        if mean.shape != scale.shape or coef.ndim != 2 or coef.shape[1] != mean.shape[0]:
            raise BadInputError(f"LBP-TOP state shapes disagree: mean {mean.shape}, coef {coef.shape}")
        if len(classes) and classes.max() >= self.num_classes:
            raise BadInputError(
                f"LBP-TOP state has class {classes.max()} but the model has {self.num_classes}"
            )
        scaler = StandardScaler()
        scaler.mean_, scaler.scale_, scaler.var_ = mean, scale, scale**2
        scaler.n_features_in_, scaler.n_samples_seen_ = mean.shape[0], 0
        svm = LinearSVC(C=self.cfg.c, class_weight="balanced", random_state=self.seed, max_iter=5000)
        svm.coef_, svm.intercept_, svm.classes_ = coef, intercept, classes
        svm.n_features_in_ = coef.shape[1]
        self.clf = make_pipeline(scaler, svm)


def _builder(planes: str, name: str):
    def build(num_classes: int, size: str = "base", seed: int = 0, **options: Any) -> LBPTOPSVM:
        refuse_unknown_options(name, set(options) - set(LBPTOPConfig.__dataclass_fields__))
        return LBPTOPSVM(num_classes, seed, LBPTOPConfig(planes=planes, **options))

    return build


_RECIPE = {"base": {"frames": 16, "size": 96}}
register_model(
    ModelSpec(
        "lbptop-svm",
        _builder("top", "lbptop-svm"),
        ("base",),
        "LBP-TOP histograms (5×5 grid) + linear SVM",
        family="classical",
        recipe=_RECIPE,
        option_fields=LBPTOPConfig,
    )
)
register_model(
    ModelSpec(
        "lbp-apex-svm",
        _builder("apex", "lbp-apex-svm"),
        ("base",),
        "LBP of the apex frame alone + linear SVM (blind to motion)",
        family="classical",
        recipe=_RECIPE,
        option_fields=LBPTOPConfig,
    )
)
