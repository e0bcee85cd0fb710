"""Onset → apex flow features: direction on known motions, strain, apex position, the cache."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mer.protocols.flow import (
    FlowConfig,
    FlowMethodError,
    FlowUnavailableError,
    apex_position,
    attach_flow,
    dense_flow,
    ensure_flow,
    flow_cache_path,
    flow_config,
    flow_features,
    optical_strain,
)
from mer.protocols.prepare import PreparedSet, Recipe


def _texture(side: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth random grey pattern (trackable at every pixel, unlike a flat face)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((side, side)) * 255).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _shifted(dx: int, dy: int, side: int = 64, margin: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(onset, apex): the apex shows the onset's content moved by (dx, dy) pixels (right, down)."""
    big = _texture(side + 2 * margin)
    onset = big[margin : margin + side, margin : margin + side]
    apex = big[margin - dy : margin - dy + side, margin - dx : margin - dx + side]
    return np.ascontiguousarray(onset), np.ascontiguousarray(apex)


METHODS = ["tvl1", "farneback", "tvl1-skimage"]  # tvl1 is a dependency (opencv-contrib), never skipped


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (-2, 0), (0, 3), (0, -2), (2, -2)])
def test_mean_flow_points_the_way_the_pattern_moved(method, dx, dy):
    onset, apex = _shifted(dx, dy)
    flow = dense_flow(onset, apex, method)[8:-8, 8:-8]  # borders have no matching content
    u, v = float(flow[..., 0].mean()), float(flow[..., 1].mean())
    assert u == pytest.approx(dx, abs=0.35) and v == pytest.approx(dy, abs=0.35), (method, u, v)


def test_flow_features_rgb_scaling_and_strain():
    onset, apex = _shifted(4, 0, side=128)
    rgb = lambda g: np.repeat(g[..., None], 3, -1)  # noqa: E731
    feats = flow_features(rgb(onset), rgb(apex), FlowConfig(method="farneback", side=32))
    assert feats.shape == (3, 32, 32) and feats.dtype == np.float32
    inner = feats[:, 4:-4, 4:-4]
    # 4 px at 128 is 1 px on the 32-pixel output grid; a translation has (almost) no strain.
    assert inner[0].mean() == pytest.approx(1.0, abs=0.1)
    assert abs(inner[1].mean()) < 0.1
    assert inner[2].mean() < 0.05
    # A zoom (skin stretching) has a clear strain where a translation has none.
    zoom = cv2.resize(onset, None, fx=1.1, fy=1.1)[6:134, 6:134]
    assert flow_features(onset, zoom, FlowConfig(method="farneback", side=32))[2, 4:-4, 4:-4].mean() > 0.05


def test_optical_strain_on_analytic_fields():
    y, x = np.mgrid[0:20, 0:20].astype(np.float32)
    zero = np.zeros_like(x)
    assert np.allclose(optical_strain(zero + 2.0, zero - 1.0), 0)  # translation
    assert np.allclose(optical_strain(0.1 * x, zero), 0.1)  # stretch along x: ε_xx = 0.1
    assert np.allclose(optical_strain(0.2 * y, zero), 0.2 / np.sqrt(2), atol=1e-6)  # shear: ε_xy = 0.1
    assert np.allclose(optical_strain(-0.1 * y, 0.1 * x), 0, atol=1e-6)  # small rotation: no strain


def test_apex_position_keyframe_and_uniform():
    clip = np.zeros((8, 16, 16, 3), np.uint8)
    clip[5] = 200  # the frame that moved most
    clip[2] = 50
    assert apex_position(clip, Recipe(frames=8, sampler="keyframe")) == 4  # T // 2
    assert apex_position(clip, Recipe(frames=8, sampler="uniform")) == 5


def _fake_prepared(tmp_path, shifts, recipe=None) -> PreparedSet:
    """A PreparedSet whose clip i moves a pattern by shifts[i] between frame 0 and frame T // 2."""
    recipe = recipe or Recipe(frames=4, size=64)
    clips = []
    for dx, dy in shifts:
        onset, apex = _shifted(dx, dy, side=64)
        frames = [onset, onset, apex, apex]  # keyframe: apex at position 2
        clips.append(np.stack([np.repeat(f[..., None], 3, -1) for f in frames]))
    return PreparedSet(tmp_path, [object()] * len(shifts), np.stack(clips), recipe)  # type: ignore[list-item]


def test_cache_is_written_once_beside_the_frames_and_reused(tmp_path, monkeypatch):
    prepared = _fake_prepared(tmp_path, [(3, 0), (0, -3)])
    cfg = FlowConfig(method="farneback", side=16)
    flow = ensure_flow(prepared, cfg)
    path = flow_cache_path(prepared, cfg)
    assert path.parent == tmp_path and path.exists() and path.with_suffix(".json").exists()
    assert flow.shape == (2, 3, 16, 16) and flow.dtype == np.float16
    assert flow[0, 0].mean() > 0.4 and abs(flow[0, 1].mean()) < 0.1  # clip 0 moved right
    assert flow[1, 1].mean() < -0.4 and abs(flow[1, 0].mean()) < 0.1  # clip 1 moved up
    assert not list(tmp_path.glob("*.partial*"))

    def boom(*a, **k):
        raise AssertionError("recomputed a cached flow")

    monkeypatch.setattr("mer.protocols.flow.flow_features", boom)
    again = ensure_flow(prepared, cfg)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(flow))
    assert flow_cache_path(prepared, FlowConfig(method="farneback", side=28)) != path


def test_attach_flow_feeds_clipset_feature(tmp_path):
    from mer.protocols.clipset import ClipSet

    prepared = _fake_prepared(tmp_path, [(3, 0), (-3, 0), (0, 3)])
    clips = ClipSet(prepared.store, np.array([2, 0]), [object(), object()], np.array([1, 0]), ("a", "b"))  # type: ignore[list-item]
    clips = attach_flow(prepared, clips, FlowConfig(method="farneback", side=16))
    feats = clips.feature("flow", [1, 0])  # positions → rows 0 and 2
    assert feats.shape == (2, 3, 16, 16)
    assert feats[0, 0].mean() > 0.4 and feats[1, 1].mean() > 0.4
    assert clips.subset([1]).feature("flow").shape == (1, 3, 16, 16)  # subsets keep the flows


def test_unknown_method_is_refused():
    with pytest.raises(FlowMethodError, match="flow method"):
        FlowConfig(method="lucas-kanade").resolved()
    with pytest.raises(FlowMethodError, match="auto"):  # no "auto" that could pick another algorithm
        FlowConfig(method="auto").resolved()
    with pytest.raises(FlowMethodError, match="no parameter.*warp"):
        flow_config({"flow": "farneback", "warps": 3})  # a TV-L1 parameter given to Farnebäck


def test_method_and_parameters_key_the_cache(tmp_path):
    """TV-L1 is the default; Farnebäck, another TV-L1 parameter or another side is another cache file,
    and asking for the defaults by name is the same file."""
    prepared = _fake_prepared(tmp_path, [(3, 0)])
    default = flow_cache_path(prepared, FlowConfig())
    assert FlowConfig().resolved().method == "tvl1" and flow_config({}) == FlowConfig().resolved()
    assert flow_cache_path(prepared, flow_config({"flow": "tvl1", "lambda": 0.15})) == default
    farneback = flow_cache_path(prepared, flow_config({"flow": "farneback"}))
    other_lambda = flow_cache_path(prepared, flow_config({"flow.lambda": 0.3}))
    assert len({default, farneback, other_lambda}) == 3
    # The record beside the cache spells out the method and every parameter.
    ensure_flow(prepared, flow_config({"flow": "farneback"}))
    record = json.loads(farneback.with_suffix(".json").read_text())["flow"]
    assert record["method"] == "farneback" and record["params"]["winsize"] == 15 and record["side"] == 56
    assert flow_config({"flow.lambda": 0.3}).tag().startswith("flow-tvl1-")
    assert flow_config({"flow": "farneback"}).tag() == "flow-farneback" and FlowConfig().tag() == ""


def test_missing_contrib_module_is_an_error_not_a_swap(tmp_path, monkeypatch):
    """OpenCV without cv2.optflow (the plain wheel): TV-L1 fails with the fix named, nothing is written,
    and Farnebäck still works when asked for."""
    monkeypatch.delattr(cv2, "optflow", raising=False)
    monkeypatch.delattr(cv2, "DualTVL1OpticalFlow_create", raising=False)
    prepared = _fake_prepared(tmp_path, [(3, 0)])
    with pytest.raises(FlowUnavailableError, match="opencv-contrib-python-headless.*--flow farneback"):
        ensure_flow(prepared)
    with pytest.raises(FlowUnavailableError, match="contrib"):
        dense_flow(*_shifted(1, 0), "tvl1")
    assert not list(tmp_path.glob("flow_*"))
    assert ensure_flow(prepared, FlowConfig(method="farneback", side=16)).shape == (1, 3, 16, 16)
