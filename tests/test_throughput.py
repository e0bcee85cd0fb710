"""The throughput benchmark at size tiny, the FLOP counter, the attention switch and the read-ahead
loader (the CPU-checkable parts of issue 9)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mer.merclip.uniformerv2 import Attention, set_attention
from mer.protocols.clipset import ClipSet
from mer.protocols.sample import Sample
from mer.zoo.flops import bf16_peak, count_step_flops
from mer.zoo.loader import PrefetchingClips

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("train_throughput", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up while being defined
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_tiny_prints_both_paths_ratio_flops_and_projection(tmp_path, capsys):
    out = tmp_path / "r.json"
    report = _bench_module().main(
        [
            "--size",
            "tiny",
            "--batch",
            "4",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--json",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert "reference:" in text and "optimized:" in text and "ratio optimized/reference:" in text
    assert "loso-samm-3" in text
    ref, opt = report["paths"]["reference"], report["paths"]["optimized"]
    assert ref["clips_per_s"] > 0 and opt["clips_per_s"] > 0
    assert report["ratio"] == pytest.approx(opt["clips_per_s"] / ref["clips_per_s"])
    assert all(np.isfinite(ref["losses"])) and all(np.isfinite(opt["losses"]))
    assert report["flops_per_clip"]["train_step"] > report["flops_per_clip"]["forward"] > 0
    # LOSO on SAMM 3-class: 133 clips, 28 folds, each clip trains in 27 of them, 55 epochs.
    p = report["projection"]["loso-samm-3"]
    assert p["folds"] == 28 and p["train_clips"] == 133 * 27 * 55
    assert p["minutes"] == pytest.approx(p["train_clips"] / opt["clips_per_s"] / 60)
    assert json.loads(out.read_text())["commit"]


def test_flop_counter_counts_grouped_convolution_backward_right():
    # Linear: forward 2·B·in·out; backward only the weight gradient (the input needs none).
    lin = nn.Linear(10, 20)
    f = count_step_flops(lin, torch.randn(3, 10))
    assert (f.forward, f.backward) == (2 * 3 * 10 * 20, 2 * 3 * 10 * 20)
    # Depthwise conv (the MHRA / DPE kind): torch's stock formula counts the weight gradient as dense,
    # 8× too much here; ours is one forward-sized convolution.
    conv = nn.Conv3d(8, 8, 3, padding=1, groups=8, bias=False)
    f = count_step_flops(conv, torch.randn(1, 8, 4, 4, 4))
    assert f.forward == 2 * 8 * 64 * 27
    assert f.backward == f.forward


def test_bf16_peaks_from_datasheets():
    assert bf16_peak("NVIDIA H100 80GB HBM3") == pytest.approx(989.4e12)
    assert bf16_peak("NVIDIA H100 PCIe") == pytest.approx(756e12)
    assert bf16_peak("NVIDIA H200") == pytest.approx(989.4e12)
    assert bf16_peak("NVIDIA A100-SXM4-80GB") == pytest.approx(312e12)
    assert bf16_peak("cpu (x86_64)") is None


def test_eager_attention_matches_sdpa():
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x, ctx = torch.randn(2, 7, 32), torch.randn(2, 11, 32)
    fused = attn(x), attn(x[:, :1], ctx)
    set_attention(attn, "eager")
    torch.testing.assert_close(attn(x), fused[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attn(x[:, :1], ctx), fused[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        set_attention(attn, "flash")


def test_prefetching_clips_serves_planned_batches_and_falls_back():
    rng = np.random.default_rng(0)
    store = rng.integers(0, 255, (10, 2, 4, 4, 3), dtype=np.uint8)
    samples = [Sample("synthme", "s", f"c{i}", "", 0, 1, 2, "happiness") for i in range(10)]
    clips = ClipSet(store, np.arange(10)[::-1].copy(), samples, np.zeros(10, dtype=int), ("a",))
    batches = [np.array([0, 3]), np.array([5, 1]), np.array([2, 9]), np.array([4])]
    with PrefetchingClips(clips, batches, pin_memory=False, depth=1) as view:
        assert len(view) == 10 and view.num_classes == 1  # everything else is the ClipSet's
        view.set_step(0)
        np.testing.assert_array_equal(view.frames(batches[0]), clips.frames(batches[0]))
        # step 1's batch_fn never reads frames: its read-ahead is dropped, step 2 is still served
        view.set_step(2)
        np.testing.assert_array_equal(view.frames(batches[2]), clips.frames(batches[2]))
        np.testing.assert_array_equal(view.frames([7]), clips.frames([7]))  # unplanned: direct read
        view.set_step(3)
        np.testing.assert_array_equal(view.frames(batches[3]), clips.frames(batches[3]))
        assert view.hits == 3
