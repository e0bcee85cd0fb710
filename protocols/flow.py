"""Onset → apex optical flow and optical strain, cached next to the prepared frames.

The optical-flow baselines (OFF-ApexNet, STSTNet, HTNet) read one motion image per clip: the dense
flow ``(u, v)`` from the onset frame to the apex frame, and the optical strain computed from it. The
flow is computed once per prepared cache and flow setting, from the prepared key frames (same crop,
same resolution as every other model sees), and stored as ``flow_<key>.npy`` (``[N, 3, side, side]``
float16: u, v, strain, in the prepared cache's row order) beside ``frames.npy``; every fold and every
flow model reuses it.

Where the onset and apex come from:

- frame 0 of a prepared clip is always the onset (both samplers keep it);
- with the key-frame sampler, position ``T // 2`` is the apex: the first frame of the second half,
  ``linspace(apex, offset)``. The apex is the sheet's, or, when the sheet gives none (DFME, some
  MEGC2019 rows), the one :func:`~mer.protocols.prepare.estimate_apex` chose during preparation: the
  frame differing most from the onset (mean absolute grey difference), recorded in the sample's
  ``extras["apex_estimated"]``;
- with the uniform sampler the apex is not at a fixed position, so it is estimated the same way among
  the T prepared frames: the one with the largest mean absolute grey difference from frame 0.

Flow method: OpenCV's Dual TV-L1 when the build has it (``opencv-contrib``), Farnebäck otherwise
(``method="auto"``); scikit-image's TV-L1 on request (``"tvl1-skimage"``: the papers' algorithm, but
about 50× slower than Farnebäck on a CPU). ``auto`` is resolved before hashing, so caches made with
different algorithms never mix.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from mer.errors import OptionValueError, UnavailableError
from mer.protocols.clipset import ClipSet
from mer.protocols.io import atomic_write_json, stable_hash
from mer.protocols.prepare import PreparedSet, Recipe

FLOW_VERSION = 1
FLOW_METHODS = ("auto", "tvl1", "farneback", "tvl1-skimage")


@dataclass(frozen=True)
class FlowConfig:
    """How the onset → apex motion image is made; every field is part of the cache key.

    Attributes:
        method: "auto" (TV-L1 when OpenCV has it, else Farnebäck), "tvl1", "farneback",
            "tvl1-skimage".
        side: Side of the cached flow image; flow is computed at the prepared resolution and
            area-averaged down to it (models resize or crop further, e.g. to 28×28).
    """

    method: str = "auto"
    side: int = 56

    def resolved(self) -> FlowConfig:
        """The same config with ``auto`` replaced by the algorithm this machine will use."""
        if self.method not in FLOW_METHODS:
            raise OptionValueError(
                f"flow method must be one of {', '.join(FLOW_METHODS)}, not {self.method!r}"
            )
        if self.method == "auto":
            return replace(self, method="tvl1" if tvl1_available() else "farneback")
        return self


def _opencv_tvl1_factory() -> Callable[[], object] | None:
    optflow = getattr(cv2, "optflow", None)
    if optflow is not None and hasattr(optflow, "DualTVL1OpticalFlow_create"):
        return optflow.DualTVL1OpticalFlow_create
    return getattr(cv2, "DualTVL1OpticalFlow_create", None)  # OpenCV 3.x spelling


def tvl1_available() -> bool:
    """Whether this OpenCV build has Dual TV-L1 (``opencv-contrib-python``; the headless wheel lacks it)."""
    return _opencv_tvl1_factory() is not None


def dense_flow(onset: np.ndarray, apex: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow from ``onset`` to ``apex`` (uint8 grey images), ``[H, W, 2]`` float32 (u, v) in pixels.

    A point at ``(x, y)`` in the onset is at ``(x + u, y + v)`` in the apex: u > 0 is a motion to
    the right, v > 0 a motion down.
    """
    if method == "tvl1":
        factory = _opencv_tvl1_factory()
        if factory is None:
            raise UnavailableError(
                "OpenCV TV-L1 needs opencv-contrib-python; use 'farneback' or 'tvl1-skimage'"
            )
        return factory().calc(onset, apex, None).astype(np.float32)
    if method == "farneback":
        # Pyramid of 3 levels at scale 0.5 reaches motions of ~10 px; a 15 px window averages the
        # sensor noise of a face crop while keeping local motions (a brow, a lip corner) apart.
        return cv2.calcOpticalFlowFarneback(onset, apex, None, 0.5, 3, 15, 3, 5, 1.2, 0).astype(np.float32)
    if method == "tvl1-skimage":
        from skimage.registration import optical_flow_tvl1

        v, u = optical_flow_tvl1(onset.astype(np.float32) / 255.0, apex.astype(np.float32) / 255.0)
        return np.stack([u, v], -1).astype(np.float32)
    raise OptionValueError(f"unknown flow method {method!r}")


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Magnitude of the optical strain tensor of the flow ``(u, v)`` (STSTNet's third channel).

    ``ε = ½(∇w + ∇wᵀ)`` for ``w = (u, v)``; the magnitude is ``sqrt(ε_xx² + ε_yy² + 2 ε_xy²)``
    with ``ε_xy = ½(∂u/∂y + ∂v/∂x)``. A rigid translation has zero strain; skin that stretches or
    compresses (a muscle pulling) has a large one, which is why it separates expressions from
    head motion.
    """
    du_dy, du_dx = np.gradient(u.astype(np.float32))
    dv_dy, dv_dx = np.gradient(v.astype(np.float32))
    exy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx**2 + dv_dy**2 + 2 * exy**2).astype(np.float32)


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def apex_position(clip: np.ndarray, recipe: Recipe) -> int:
    """Position of the apex among a prepared clip's T frames (see the module docstring)."""
    t = clip.shape[0]
    if recipe.sampler == "keyframe":
        return t // 2
    # Uniform sampling: the frame that moved most from the onset.
    ref = _grey(clip[0]).astype(np.float32)
    diffs = [float(np.abs(_grey(clip[i]).astype(np.float32) - ref).mean()) for i in range(1, t)]
    return 1 + int(np.argmax(diffs)) if diffs else 0


def flow_features(onset: np.ndarray, apex: np.ndarray, cfg: FlowConfig) -> np.ndarray:
    """The motion image ``[3, side, side]`` float32 (u, v, strain) of one onset/apex pair.

    ``onset`` and ``apex`` are RGB (or grey) uint8 frames at the prepared resolution. u and v are in
    pixels of the ``side``-sized output grid (so their size does not depend on the prepared
    resolution); strain is dimensionless.
    """
    method = cfg.resolved().method
    flow = dense_flow(_grey(onset), _grey(apex), method)
    u, v = flow[..., 0], flow[..., 1]
    strain = optical_strain(u, v)
    h, w = u.shape
    out = np.stack(
        [
            cv2.resize(u, (cfg.side, cfg.side), interpolation=cv2.INTER_AREA) * (cfg.side / w),
            cv2.resize(v, (cfg.side, cfg.side), interpolation=cv2.INTER_AREA) * (cfg.side / h),
            cv2.resize(strain, (cfg.side, cfg.side), interpolation=cv2.INTER_AREA),
        ]
    )
    return out.astype(np.float32)


def flow_cache_path(prepared: PreparedSet, cfg: FlowConfig) -> Path:
    """``<prepared>/flow_<key>.npy``; the key hashes the resolved flow config and the code version."""
    key = stable_hash({"v": FLOW_VERSION, **asdict(cfg.resolved())})
    return prepared.path / f"flow_{key}.npy"


def ensure_flow(
    prepared: PreparedSet,
    cfg: FlowConfig | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The flow cache of ``prepared`` (``[N, 3, side, side]`` float16 memmap), computed on first use.

    Args:
        prepared: A finished prepared cache.
        cfg: Flow settings (default :class:`FlowConfig`).
        workers: Threads (OpenCV releases the GIL).
        progress: Called with ``(done, total)`` after each clip.
    """
    cfg = (cfg or FlowConfig()).resolved()
    path = flow_cache_path(prepared, cfg)
    if path.exists():
        return np.load(path, mmap_mode="r")
    n = len(prepared.samples)
    # A per-process temporary name: two processes computing the same cache never write one file.
    tmp = path.with_name(f"{path.stem}.partial{os.getpid()}.npy")
    _compute(prepared, cfg, tmp, workers, progress)
    atomic_write_json(path.with_suffix(".json"), {"flow": asdict(cfg), "version": FLOW_VERSION, "n": n})
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def _compute(
    prepared: PreparedSet,
    cfg: FlowConfig,
    tmp: Path,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Fill ``tmp`` with every clip's motion image; the memmap is closed when this returns."""
    n = len(prepared.samples)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, 3, cfg.side, cfg.side))

    def work(i: int) -> None:
        clip = np.asarray(prepared.store[i])
        out[i] = flow_features(clip[0], clip[apex_position(clip, prepared.recipe)], cfg)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, _ in enumerate(pool.map(work, range(n)), start=1):
            if progress:
                progress(done, n)
    out.flush()


def attach_flow(prepared: PreparedSet, clips: ClipSet, cfg: FlowConfig | None = None) -> ClipSet:
    """``clips`` with the flow cache attached as feature ``"flow"`` (read: ``clips.feature("flow", idx)``)."""
    flows = dict(clips.flows or {})
    flows["flow"] = ensure_flow(prepared, cfg)
    return ClipSet(clips.store, clips.rows, clips.samples, clips.labels, clips.class_names, flows=flows)
