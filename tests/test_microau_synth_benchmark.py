"""Micro-AU CLIP (tiny, from random init) learns SynthME's AUs: end to end through the runner."""

from __future__ import annotations

import time

import pytest
from _synth import small_synth

from mer.protocols.runner import RunConfig, run_bench
from mer.registrations import load_all

load_all()


def test_microau_clip_learns_a_small_synth(tmp_path):
    """The always-run version: 6 subjects × 12 clips, the first three LOSO folds, real training."""
    small_synth(tmp_path / "synth", subjects=6, clips=12)
    runs = tmp_path / "runs"
    majority = run_bench(RunConfig(model="au-majority", protocol="au-loso-synth", folds="0-2"), runs_dir=runs)
    model = run_bench(
        RunConfig(model="microau-clip", protocol="au-loso-synth", size="tiny", folds="0-2"), runs_dir=runs
    )
    assert majority.metrics["mean_f1"] == 0.0
    assert model.metrics["mean_f1"] >= majority.metrics["mean_f1"] + 0.15, model.metrics["per_au"]


@pytest.mark.slow
def test_microau_clip_beats_au_majority_on_au_loso_synth(tmp_path, monkeypatch):
    """The issue's bar: default SynthME (16 subjects × 12 clips, 128 px), every fold, < 10 minutes.

    Measured on 2 shared CPU cores: ~1.5 min to write SynthME, ~6.6 min for microau-clip's 16 folds.
    """
    start = time.perf_counter()
    runs = tmp_path / "runs"
    majority = run_bench(RunConfig(model="au-majority", protocol="au-loso-synth"), runs_dir=runs)
    model = run_bench(RunConfig(model="microau-clip", protocol="au-loso-synth", size="tiny"), runs_dir=runs)
    elapsed = time.perf_counter() - start
    scores = {r.run_dir.name: round(r.metrics["mean_f1"], 4) for r in (majority, model)}
    print(f"mean F1 {scores}, {elapsed:.0f} s")
    assert model.folds_done == model.n_folds == 16
    assert model.metrics["mean_f1"] >= majority.metrics["mean_f1"] + 0.15
    assert elapsed < 600
