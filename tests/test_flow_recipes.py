"""Flow baselines' recipes: ``mer`` (default) and ``official`` (as the authors trained them).

Expected values are the authors' published settings (baselines/RECIPES.md), typed here by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mer.errors import ExitCode, OptionValueError, UnavailableError
from mer.protocols.clipset import ClipSet
from mer.registrations import load_all
from mer.zoo.api import MODELS, UnknownOptionError

load_all()


def _fake_dlib(monkeypatch, points=None, calls=None):
    """dlib "available", with five_points returning fixed fractions and counting its frames."""
    import mer.protocols.faces as faces

    pts = np.array(
        points if points is not None else [[0.3, 0.3], [0.7, 0.3], [0.5, 0.5], [0.3, 0.8], [0.7, 0.8]]
    )

    def five(frame):
        if calls is not None:
            calls.append(int(frame[0, 0, 0]))
        return pts.astype(np.float32)

    monkeypatch.setattr(faces, "_dlib", lambda: (None, None, None))
    monkeypatch.setattr(faces, "five_points", five)


def test_htnet_official_is_the_authors_training(monkeypatch):
    _fake_dlib(monkeypatch)
    est = MODELS.get("htnet").build(num_classes=3, size="tiny", seed=0, device="cpu", recipe="official")
    o, cfg = est.options, est.config
    assert (o.recipe, o.lr, o.weight_decay, o.batch_size, o.epochs) == ("official", 5e-5, 0.0, 256, 800)
    assert (o.flip, o.input_scale, o.regions) == (False, "minmax255", "landmarks")
    # Plain Adam at a constant rate: no warm-up, no decay, no clipping.
    assert (cfg.lr, cfg.weight_decay, cfg.warmup_epochs, cfg.min_lr_ratio, cfg.grad_clip) == (
        5e-5,
        0.0,
        0,
        1.0,
        None,
    )
    # The default stays mer's own recipe.
    mer = MODELS.get("htnet").build(num_classes=3, size="base", seed=0, device="cpu")
    assert (mer.options.recipe, mer.config.lr, mer.config.weight_decay, mer.config.batch_size) == (
        "mer",
        2e-4,
        0.05,
        32,
    )
    assert mer.config.warmup_epochs == 2 and mer.options.regions == "boxes"
    # An option given with the recipe overrides just that field.
    short = MODELS.get("htnet").build(num_classes=3, size="tiny", seed=0, recipe="official", epochs=3)
    assert (short.config.epochs, short.config.lr) == (3, 5e-5)


def test_ststnet_and_off_apexnet_official():
    st = MODELS.get("ststnet").build(num_classes=3, seed=0, device="cpu", recipe="official")
    assert (st.config.lr, st.config.batch_size, st.config.epochs, st.options.input_scale) == (
        5e-5,
        256,
        800,
        "minmax255",
    )
    # The authors' layer order: padding 2, ReLU then BatchNorm, dropout after each stream's pool.
    stream = st.model.streams[0]
    assert stream[0].padding == (2, 2)
    assert [type(m).__name__ for m in stream] == ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "Dropout"]
    assert st.model.head.in_features == 16 * 5 * 5
    assert st.model(torch.rand(2, 3, 56, 56)).shape == (2, 3)
    off = MODELS.get("off-apexnet").build(num_classes=3, seed=0, device="cpu", recipe="official")
    assert (off.config.lr, off.config.weight_decay, off.options.flip) == (1e-4, 0.0, False)


def test_bad_recipe_and_options_are_refused():
    with pytest.raises(OptionValueError, match="unknown recipe 'paper'; recipes: mer, official") as e:
        MODELS.get("ststnet").build(num_classes=3, recipe="paper")
    assert e.value.exit_code == ExitCode.USAGE
    with pytest.raises(UnknownOptionError, match="regions"):
        MODELS.get("ststnet").build(num_classes=3, regions="landmarks")
    with pytest.raises(OptionValueError, match="input_scale"):
        MODELS.get("off-apexnet").build(num_classes=3, input_scale="zscore")


def test_official_htnet_without_dlib_is_an_error_naming_the_explicit_choice(monkeypatch):
    import mer.protocols.faces as faces

    def missing():
        raise RuntimeError("dlib is not installed")

    monkeypatch.setattr(faces, "_dlib", missing)
    with pytest.raises(
        UnavailableError, match=r"needs dlib's 68-point predictor: dlib is not installed.*-o regions=boxes"
    ):
        MODELS.get("htnet").build(num_classes=3, size="tiny", recipe="official")
    est = MODELS.get("htnet").build(num_classes=3, size="tiny", recipe="official", regions="boxes")
    assert est.options.regions == "boxes" and est.options.lr == 5e-5
    assert UnavailableError("").exit_code == ExitCode.USAGE


def test_minmax255_maps_each_sample_channel():
    from mer.baselines.flow_common import MinMax255

    x = torch.zeros(2, 3, 4, 4)
    x[0, 0] = torch.arange(16.0).view(4, 4) - 5.0  # -5 .. 10
    x[1, 1, 0, 0] = 0.25
    y = MinMax255()(x)
    assert float(y[0, 0].min()) == 0.0 and float(y[0, 0].max()) == 255.0
    assert float(y[0, 0, 0, 1]) == pytest.approx(17.0)  # (-4 + 5) / 15 * 255
    assert float(y[1, 1, 0, 0]) == 255.0 and float(y[1, 1, 1, 1]) == 0.0
    assert float(y[0, 1].abs().sum()) == 0.0  # a constant channel maps to 0


def test_landmark_windows_are_cut_around_the_points():
    from mer.baselines.htnet import tile_landmark_regions

    side = 28
    img = torch.zeros(1, 1, side, side)
    for r in range(side):
        for c in range(side):
            img[0, 0, r, c] = r * 100 + c
    # Left eye at (x=10, y=9), right eye at (20, 9), mouth corners at (9, 20) and (27, 27): the last
    # is clamped to (21, 21) so the 14×14 window fits.
    pts = torch.tensor([[[10, 9], [20, 9], [14, 14], [9, 20], [27, 27]]], dtype=torch.float32) / side
    tiles = tile_landmark_regions(img, pts, side)
    assert tiles.shape == (1, 1, 28, 28)
    # Each tile's top-left pixel is (centre_y - 7, centre_x - 7) of the source.
    assert int(tiles[0, 0, 0, 0]) == (9 - 7) * 100 + (10 - 7)
    assert int(tiles[0, 0, 0, 14]) == (9 - 7) * 100 + (20 - 7)
    assert int(tiles[0, 0, 14, 0]) == (20 - 7) * 100 + (9 - 7)
    assert int(tiles[0, 0, 14, 14]) == (21 - 7) * 100 + (21 - 7)
    assert int(tiles[0, 0, 27, 27]) == (21 + 6) * 100 + (21 + 6)


def test_landmark_points_read_each_onset_once_and_reach_the_network(monkeypatch):
    calls: list[int] = []
    _fake_dlib(monkeypatch, calls=calls)
    import mer.baselines.htnet as htnet

    monkeypatch.setattr(htnet, "_POINTS", {})
    store = np.zeros((4, 2, 8, 8, 3), np.uint8)
    for i in range(4):
        store[i, 0] = 10 + i  # onset frame marks its clip
        store[i, 1] = 200
    flows = np.random.default_rng(0).normal(size=(4, 3, 56, 56)).astype(np.float32)
    clips = ClipSet(store, np.arange(4), [None] * 4, np.array([0, 1, 2, 0]), ("a", "b", "c"), {"flow": flows})
    est = MODELS.get("htnet").build(num_classes=3, size="tiny", seed=0, device="cpu", recipe="official")
    batch = est.batch_fn(clips, np.array([2, 0]), True, torch.device("cpu"))
    assert batch["extra"]["points"].shape == (2, 5, 2)
    assert calls == [12, 10]  # the onset frames of clips 2 and 0
    est.batch_fn(clips, np.array([0, 1, 2, 3]), False, torch.device("cpu"))
    assert calls == [12, 10, 11, 13]  # cached: only the new clips are read
    logits = est.logits_fn(est.model, batch)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_plan_records_the_resolved_recipe_and_the_explicit_boxes(tmp_path, monkeypatch):
    from mer.protocols.plan import plan_run
    from mer.protocols.runner import RunConfig
    from mer.zoo.options import check_options

    monkeypatch.setenv("MER_HOME", str(tmp_path))
    plan = plan_run(
        RunConfig(
            model="htnet",
            protocol="loso-synth-3",
            size="tiny",
            options={"recipe": "official", "regions": "boxes"},
        )
    )
    training = plan.record()["training"]
    assert (training["recipe"], training["lr"], training["batch_size"], training["regions"]) == (
        "official",
        5e-5,
        256,
        "boxes",
    )
    assert training["optimizer"] == "Adam (AdamW without weight decay), constant LR"
    assert any("fixed boxes instead of landmark windows" in n for n in plan.record()["notes"])
    default = plan_run(RunConfig(model="ststnet", protocol="loso-synth-3")).record()["training"]
    assert (default["recipe"], default["lr"], default["schedule"]) == ("mer", 5e-3, "warmup-cosine")
    # The option schema knows each flow model's own recipe names.
    check_options(MODELS.get("ststnet"), {"recipe": "mer"})
    with pytest.raises(OptionValueError, match="must be one of mer, official"):
        check_options(MODELS.get("ststnet"), {"recipe": "paper"})
    with pytest.raises(OptionValueError, match="must be one of boxes, landmarks"):
        check_options(MODELS.get("htnet"), {"regions": "eyes"})
