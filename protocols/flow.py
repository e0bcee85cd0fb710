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

Flow method: OpenCV's Dual TV-L1 (``tvl1``, the default: the algorithm OFF-ApexNet, STSTNet and HTNet
used), Farnebäck (``farneback``, ~50× cheaper, only when asked) or scikit-image's TV-L1
(``tvl1-skimage``). The method and every parameter of it are part of the cache key and of each run's
record; a method this machine cannot run (OpenCV without its contrib module has no TV-L1) is an error,
never replaced by another one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mer.errors import OptionValueError, UnavailableError
from mer.protocols.cache import CacheError, build_lock, file_record, open_array, remove_stale, workspace
from mer.protocols.clipset import ClipSet
from mer.protocols.io import atomic_write_json, stable_hash
from mer.protocols.prepare import PreparedSet, Recipe

FLOW_VERSION = 2
DEFAULT_METHOD = "tvl1"
#: Method → its parameters and their defaults (OpenCV's and scikit-image's own defaults; Farnebäck's are
#: mer's: a pyramid of 3 levels at scale 0.5 reaches motions of ~10 px, a 15 px window averages the
#: sensor noise of a face crop while keeping local motions, a brow or a lip corner, apart).
METHOD_PARAMS: dict[str, dict[str, float | int]] = {
    "tvl1": {
        "tau": 0.25,
        "lambda": 0.15,
        "theta": 0.3,
        "nscales": 5,
        "warps": 5,
        "epsilon": 0.01,
        "inner_iterations": 30,
        "outer_iterations": 10,
        "scale_step": 0.8,
        "gamma": 0.0,
        "median_filtering": 5,
    },
    "farneback": {
        "pyr_scale": 0.5,
        "levels": 3,
        "winsize": 15,
        "iterations": 3,
        "poly_n": 5,
        "poly_sigma": 1.2,
    },
    "tvl1-skimage": {"attachment": 15.0, "tightness": 0.3, "num_warp": 5, "num_iter": 10, "tol": 1e-4},
}
FLOW_METHODS = tuple(METHOD_PARAMS)
METHOD_TITLES = {
    "tvl1": "OpenCV Dual TV-L1",
    "farneback": "OpenCV Farnebäck",
    "tvl1-skimage": "scikit-image TV-L1",
}


class FlowMethodError(OptionValueError):
    """A flow method or parameter mer does not know."""


class FlowUnavailableError(UnavailableError):
    """A flow method this installation cannot run (TV-L1 without OpenCV's contrib module)."""


@dataclass(frozen=True)
class FlowConfig:
    """How the onset → apex motion image is made; every field is part of the cache key.

    Attributes:
        method: "tvl1" (default), "farneback" or "tvl1-skimage".
        side: Side of the cached flow image; flow is computed at the prepared resolution and
            area-averaged down to it (models resize or crop further, e.g. to 28×28).
        params: Parameters of the method, as ``(name, value)`` pairs; :meth:`resolved` fills in every
            default, so the record and the cache key always hold the complete set.
    """

    method: str = DEFAULT_METHOD
    side: int = 56
    params: tuple[tuple[str, float | int], ...] = ()

    def resolved(self) -> FlowConfig:
        """The same config with every parameter of the method spelled out, sorted by name.

        Raises:
            FlowMethodError: an unknown method or parameter.
        """
        if self.method not in METHOD_PARAMS:
            raise FlowMethodError(
                f"flow method must be one of {', '.join(FLOW_METHODS)}, not {self.method!r}"
            )
        defaults = METHOD_PARAMS[self.method]
        given = dict(self.params)
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise FlowMethodError(
                f"flow method {self.method} has no parameter(s) {', '.join(unknown)} "
                f"(it has {', '.join(defaults)})"
            )
        merged = {k: type(v)(given.get(k, v)) for k, v in defaults.items()}
        return replace(self, params=tuple(sorted(merged.items())))

    def to_json(self) -> dict[str, Any]:
        """The resolved config as recorded in run.json and beside the cache."""
        r = self.resolved()
        return {"method": r.method, "side": r.side, "params": dict(r.params)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FlowConfig:
        """Inverse of :meth:`to_json`."""
        return cls(str(d["method"]), int(d["side"]), tuple(sorted(dict(d.get("params") or {}).items())))

    def tag(self) -> str:
        """``""`` for the default flow, else a short run-id part: ``flow-farneback``, plus a hash of the
        parameters when they differ from the method's defaults."""
        r = self.resolved()
        if r == FlowConfig().resolved():
            return ""
        same = r.params == FlowConfig(r.method).resolved().params
        return f"flow-{r.method}" + (
            "" if same and r.side == FlowConfig.side else "-" + stable_hash(r.to_json(), 6)
        )

    def describe(self) -> str:
        """One line: method, non-default parameters, cache side (leaderboard footnotes, progress)."""
        r = self.resolved()
        defaults = METHOD_PARAMS[r.method]
        changed = [f"{k}={v}" for k, v in r.params if v != defaults[k]]
        extra = f"; {', '.join(changed)}" if changed else "; default parameters"
        return f"{r.method} ({METHOD_TITLES[r.method]}{extra}), cached at {r.side}×{r.side}"


def is_flow_setting(key: str) -> bool:
    """Whether a preparation override (``--prep KEY=VALUE``) is a flow setting: ``flow``, ``flow_side``,
    ``flow.NAME``."""
    return key in ("flow", "flow_side") or key.startswith("flow.")


def flow_config(settings: Mapping[str, Any] | None) -> FlowConfig:
    """A :class:`FlowConfig` from user settings: ``flow`` / ``method`` (the method), ``side`` or
    ``flow_side``, and any parameter of the method as ``NAME`` or ``flow.NAME``.

    Raises:
        FlowMethodError: an unknown method, parameter or setting.
    """
    method, side, params = DEFAULT_METHOD, FlowConfig.side, {}
    for key, value in (settings or {}).items():
        name = key[len("flow.") :] if key.startswith("flow.") else key
        if name in ("flow", "method"):
            method = str(value)
        elif name in ("side", "flow_side"):
            side = int(value)
        else:
            params[name] = value
    return FlowConfig(method, side, tuple(sorted(params.items()))).resolved()


def _opencv_tvl1_factory() -> Callable[..., object] | None:
    optflow = getattr(cv2, "optflow", None)
    if optflow is not None and hasattr(optflow, "DualTVL1OpticalFlow_create"):
        return optflow.DualTVL1OpticalFlow_create
    return getattr(cv2, "DualTVL1OpticalFlow_create", None)  # OpenCV 3.x spelling


def tvl1_available() -> bool:
    """Whether this OpenCV build has Dual TV-L1 (the contrib wheels have it; the plain ones do not)."""
    return _opencv_tvl1_factory() is not None


def require_method(method: str) -> None:
    """Check that ``method`` can run here.

    Raises:
        FlowMethodError: unknown method.
        FlowUnavailableError: TV-L1 asked for and OpenCV has no contrib module.
    """
    if method not in METHOD_PARAMS:
        raise FlowMethodError(f"flow method must be one of {', '.join(FLOW_METHODS)}, not {method!r}")
    if method == "tvl1" and not tvl1_available():
        raise FlowUnavailableError(
            f"flow method tvl1 needs OpenCV's contrib module (cv2.optflow), which this OpenCV "
            f"{cv2.__version__} lacks: install 'opencv-contrib-python-headless<5' (and remove "
            "opencv-python*), or ask for another method explicitly (--flow farneback)"
        )


def dense_flow(
    onset: np.ndarray, apex: np.ndarray, method: str = DEFAULT_METHOD, params: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Dense flow from ``onset`` to ``apex`` (uint8 grey images), ``[H, W, 2]`` float32 (u, v) in pixels.

    A point at ``(x, y)`` in the onset is at ``(x + u, y + v)`` in the apex: u > 0 is a motion to
    the right, v > 0 a motion down. ``params`` override the method's defaults (:data:`METHOD_PARAMS`).

    Raises:
        FlowMethodError: unknown method or parameter.
        FlowUnavailableError: a method this installation cannot run.
    """
    require_method(method)
    p = dict(FlowConfig(method, params=tuple(sorted((params or {}).items()))).resolved().params)
    if method == "tvl1":
        algo = _opencv_tvl1_factory()(  # type: ignore[misc]
            p["tau"],
            p["lambda"],
            p["theta"],
            p["nscales"],
            p["warps"],
            p["epsilon"],
            p["inner_iterations"],
            p["outer_iterations"],
            p["scale_step"],
            p["gamma"],
            p["median_filtering"],
        )
        return algo.calc(onset, apex, None).astype(np.float32)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(
            onset,
            apex,
            None,
            p["pyr_scale"],
            p["levels"],
            p["winsize"],
            p["iterations"],
            p["poly_n"],
            p["poly_sigma"],
            0,
        ).astype(np.float32)
    from skimage.registration import optical_flow_tvl1

    v, u = optical_flow_tvl1(onset.astype(np.float32) / 255.0, apex.astype(np.float32) / 255.0, **p)
    return np.stack([u, v], -1).astype(np.float32)


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
    cfg = cfg.resolved()
    flow = dense_flow(_grey(onset), _grey(apex), cfg.method, dict(cfg.params))
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
    """``<prepared>/flow_<key>.npy``; the key hashes the method, its parameters, the side and the code
    version."""
    key = stable_hash({"v": FLOW_VERSION, **cfg.to_json()})
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
    record = path.with_suffix(".json")
    if record.exists():
        return _open_flow(prepared, path, prepared.verified)
    # One builder at a time; the others wait and use its file (mer.protocols.cache).
    with build_lock(path, "a flow cache"):
        if record.exists():
            return _open_flow(prepared, path, prepared.verified)
        require_method(cfg.method)  # before any work: a missing method is an error, never a swap
        remove_stale(path)
        tmp = path.parent / f"{workspace(path).name}.npy"  # open_memmap wants a .npy name
        _compute(prepared, cfg, tmp, workers, progress)
        files = {path.name: file_record(tmp)}
        os.replace(tmp, path)
        # The record is written last: its presence marks a finished cache.
        atomic_write_json(
            record,
            {"flow": cfg.to_json(), "version": FLOW_VERSION, "n": len(prepared.samples), "files": files},
        )
    return _open_flow(prepared, path, "size")


def _open_flow(prepared: PreparedSet, path: Path, verify: str) -> np.ndarray:
    """The flow array at ``path``, checked against the record beside it (see :func:`open_array`)."""
    from mer.protocols.prepare import rebuild_command

    rebuild = rebuild_command(prepared.path.parent.name, prepared.recipe)
    try:
        rec = json.loads(path.with_suffix(".json").read_text())["files"][path.name]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CacheError(
            f"damaged cache {prepared.path}: {path.with_suffix('.json').name} cannot be read ({e}); "
            f"rebuild it with `{rebuild}`"
        ) from None
    return open_array(path, rec, "sha256" if verify == "sha256" else "size", rebuild)


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
