"""OFF-ApexNet, STSTNet, HTNet: CPU forward/backward, flips, regions, and real LOSO runs on SynthME."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mer.registrations import load_all
from mer.zoo.api import MODELS

load_all()

FLOW_MODELS = ("off-apexnet", "ststnet", "htnet")


@pytest.mark.parametrize("name", FLOW_MODELS)
def test_registered_as_flow_models(name):
    spec = MODELS.get(name)
    assert spec.inputs == "flow" and spec.task == "emotion"
    assert spec.sizes == ("base", "tiny")
    assert spec.recipe["base"] == {"frames": 16, "size": 128}


@pytest.mark.parametrize(
    "size",
    ["tiny", pytest.param("base", marks=pytest.mark.slow)],  # tiny == base except for HTNet
)
@pytest.mark.parametrize("name", FLOW_MODELS)
def test_cpu_forward_backward(name, size):
    est = MODELS.get(name).build(num_classes=3, size=size, seed=0, device="cpu")
    model = est.model
    flow = torch.randn(4, 3, 56, 56)
    logits = model(flow)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_paper_sizes():
    from mer.baselines.htnet import SIZES, HTNet
    from mer.baselines.off_apexnet import OffApexNet
    from mer.baselines.ststnet import STSTNet

    st = STSTNet(3)
    assert [s[0].out_channels for s in st.streams] == [3, 5, 8] and st.head.in_features == 16 * 5 * 5
    off = OffApexNet(3)
    assert off.stream_u[0].out_channels == 6 and off.stream_u[3].out_channels == 16
    assert off.fc[0].in_features == 2 * 16 * 7 * 7 and off.fc[0].out_features == 1024
    base = SIZES["base"]
    assert (base.image_size, base.patch_size, base.dim, base.heads) == (28, 7, 256, 3)
    assert base.block_repeats == (2, 2, 10)
    with torch.device("meta"):  # the 11M-weight paper size, without allocating it
        assert [len(level) for level in HTNet(3).levels] == [2, 2, 10]


def test_hflip_negates_horizontal_motion():
    from mer.baselines.flow_common import hflip_flow

    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, :, :2] = 1.0  # rightward motion on the image's left edge
    x[0, 1, :, :2] = 0.5
    y = hflip_flow(x)
    assert float(y[0, 0, :, -2:].mean()) == -1.0 and float(y[0, 1, :, -2:].mean()) == 0.5
    assert float(y[0, 0, :, :-2].abs().sum()) == 0.0


def test_htnet_tiles_the_four_facial_regions():
    from mer.baselines.htnet import tile_regions

    flow = torch.zeros(1, 3, 56, 56)
    flow[0, 0, 34:50, 2:20] = 1.0  # motion at the left lip corner only
    tiles = tile_regions(flow, 28)
    assert tiles.shape == (1, 3, 28, 28)
    energy = [float(tiles[0, 0, r : r + 14, c : c + 14].sum()) for r in (0, 14) for c in (0, 14)]
    assert energy[2] > 0 and energy[0] == energy[1] == energy[3] == 0  # bottom-left tile


def test_scale_is_fit_on_training_flow():
    from mer.baselines.flow_common import FlowScale, fit_scale
    from mer.protocols.clipset import ClipSet

    flows = np.zeros((4, 3, 8, 8), np.float32)
    flows[:, 0] = 2.0
    flows[:, 1] = -0.5
    clips = ClipSet(
        np.zeros((4, 1, 1, 1, 3), np.uint8),
        np.arange(4),
        [None] * 4,
        np.zeros(4, int),
        ("a",),
        flows={"flow": flows},
    )
    est = MODELS.get("ststnet").build(num_classes=3, seed=0, device="cpu")
    fit_scale(est.model, clips)
    scale = next(m for m in est.model.modules() if isinstance(m, FlowScale)).scale
    assert scale.tolist() == pytest.approx([2.0, 0.5, 1.0])  # the all-zero strain channel keeps 1
    assert "scale.scale" in est.state_dict()  # travels with the weights


def test_unknown_option_is_refused():
    with pytest.raises(TypeError, match="unknown option"):
        MODELS.get("htnet").build(num_classes=3, size="tiny", seed=0, epoch=3)


@pytest.fixture(scope="module")
def small_synthme(tmp_path_factory):
    """8 subjects × 10 short clips, small enough to train all three models for real in CI, and one
    MER_HOME for the module so that the three models share one preparation and one flow cache."""
    from mer.protocols.synthme import write_synthme

    root = tmp_path_factory.mktemp("synthme_small")
    write_synthme(root / "data", subjects=8, clips_per_subject=10, frames=(10, 16), width=96, height=96)
    return root


def _run(model, size, runs, **options):
    from mer.protocols.runner import RunConfig, run_bench

    return run_bench(
        RunConfig(model=model, protocol="loso-synth-3", size=size, options=options), runs_dir=runs
    )


# Few epochs keep CI fast (each run ~10-15 s on a shared 2-core CPU); the full run below uses defaults.
FAST = {"off-apexnet": ("base", 8), "ststnet": ("base", 15), "htnet": ("tiny", 15)}


@pytest.mark.parametrize("name", FLOW_MODELS)
def test_small_loso_synth_beats_chance(name, small_synthme, tmp_path, monkeypatch):
    from mer.protocols.config import add_dataset

    monkeypatch.setenv("MER_HOME", str(small_synthme / "home"))
    add_dataset("synthme", small_synthme / "data")
    chance = _run("chance", None, tmp_path).metrics["uf1"]
    size, epochs = FAST[name]
    result = _run(name, size, tmp_path, epochs=epochs)
    assert result.folds_done == result.n_folds == 8
    assert result.metrics["uf1"] >= chance + 0.15, (name, result.metrics["uf1"], chance)
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["flow"]["method"] == "tvl1"  # the default, the papers' flow
    prepared = Path(meta["prepared"])
    assert len(list(prepared.glob("flow_*.npy"))) == 1  # one cache beside the frames, shared by the models


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size"), [("off-apexnet", "base"), ("ststnet", "base"), ("htnet", "tiny")])
def test_full_loso_synth_3_beats_chance(name, size, tmp_path):
    """Default SynthME (16 subjects × 12 clips), default training options; ~1-2.5 min each on 2 cores."""
    chance = _run("chance", None, tmp_path).metrics["uf1"]
    start = time.perf_counter()
    result = _run(name, size, tmp_path)
    seconds = time.perf_counter() - start
    print(f"{name}-{size}: UF1 {result.metrics['uf1']:.3f} (chance {chance:.3f}) in {seconds:.0f} s")
    assert result.folds_done == result.n_folds == 16
    assert result.metrics["uf1"] >= chance + 0.15


def test_runs_on_the_megc2019_composite(small_synthme, tmp_path, monkeypatch):
    """The composite has no frame numbers and no apex: the apex is estimated, the flow still made."""
    import os

    import pandas as pd

    from mer.protocols.config import add_dataset
    from mer.protocols.synthme import parse_synthme, three_class_label

    monkeypatch.setenv("MER_HOME", str(tmp_path / "home"))
    samples = parse_synthme(small_synthme / "data" / "SynthME-coding.csv").samples
    root, rows = tmp_path / "megc", []
    for s in samples[:40]:  # 4 subjects
        label = three_class_label(s)
        if label is None:
            continue
        folder = root / "casme2" / f"sub{s.subject}" / Path(s.source).name
        folder.mkdir(parents=True)
        for f in (small_synthme / "data" / s.source).iterdir():
            os.link(f, folder / f.name)
        rows.append(
            [
                "casme2",
                f"sub{s.subject}",
                Path(s.source).name,
                ("negative", "positive", "surprise").index(label),
            ]
        )
    pd.DataFrame(rows).to_csv(root / "combined_3class_gt.csv", header=False, index=False)
    add_dataset("megc2019", root)
    from mer.protocols.runner import RunConfig, run_bench

    # Farnebäck: this test is about the composite's missing apex, not the flow method (TV-L1 would add
    # ~10 s of CPU for nothing it checks).
    config = RunConfig(
        model="ststnet", protocol="megc2019", folds="0-1", options={"epochs": 2}, flow={"flow": "farneback"}
    )
    result = run_bench(config, runs_dir=tmp_path)
    assert result.folds_done == 2
    prepared = Path(json.loads((result.run_dir / "run.json").read_text())["prepared"])
    index = pd.read_csv(prepared / "index.csv", dtype=str, keep_default_na=False)
    assert index["extras"].str.contains("apex_estimated").all()
    assert len(list(prepared.glob("flow_*.npy"))) == 1
