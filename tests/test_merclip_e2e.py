"""End to end: ``mer bench run --model merclip --size tiny --protocol loso-synth-3`` on the CPU.

The full LOSO run is slow (minutes on 2 cores); the fast tests train the tiny model for real on a small
SynthME and check that it learns at all, and that the runner gives deep models a per-fold checkpoint
folder (resume mid-fold) while classical models never see one.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from _synth import small_synth

from mer.catalog import load_all
from mer.protocols.prepare import Recipe
from mer.protocols.protocol import PROTOCOLS
from mer.protocols.runner import RunConfig, load_protocol_data, run_bench
from mer.zoo.api import MODELS

# Known state (see the report of the tuning session): the tiny UniformerV2 encoder trained from scratch
# does not pick up SynthME's few-pixel AU motions within a CPU budget. With the shipped tiny recipe it
# cannot even fit 27 training clips in 60 epochs (it predicts one class), and on loso-synth-3 it scores
# UF1 ≈ 0.24 (chance 0.33). These tests state the target; strict xfail makes them fail loudly (XPASS)
# the day the tiny recipe learns, so the markers get removed then.
_NOT_LEARNING = "tiny MER-CLIP does not yet learn SynthME on the CPU budget (open issue)"


@pytest.mark.xfail(reason=_NOT_LEARNING, strict=True)
def test_merclip_tiny_fits_a_small_training_set(tmp_path):
    """Training is not broken: after a short run the model classifies its own training clips far
    better than the majority class (a model that learns nothing predicts the majority)."""
    load_all()
    small_synth(tmp_path / "synth", subjects=4, clips=8)
    protocol = PROTOCOLS.get("loso-synth-3")
    prep = MODELS.get("merclip").recipe["tiny"]
    _, clips = load_protocol_data(protocol, Recipe(frames=prep["frames"], size=prep["size"]))
    y = np.asarray(clips.labels)
    majority = np.bincount(y).max() / len(y)
    est = MODELS.get("merclip").build(num_classes=protocol.num_classes, size="tiny", seed=0, epochs=60)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core CPU one thread trains this tiny model ~3× faster
    try:
        t0 = time.perf_counter()
        est.fit(clips)
        acc = float((est.predict(clips).labels == y).mean())
    finally:
        torch.set_num_threads(threads)
    assert time.perf_counter() - t0 < 60
    assert acc >= majority + 0.2, (acc, majority)


def test_runner_gives_deep_models_a_fold_work_dir(tmp_path, monkeypatch):
    """A deep model is built with ``work_dir=<run>/work/fold_NNN`` (its checkpoint lives there while
    the fold trains, so a killed run resumes mid-fold); the folder is gone once the fold is done."""
    load_all()
    small_synth(tmp_path / "synth", subjects=3, clips=4)
    spec = MODELS.get("merclip")
    seen: list[str | None] = []

    def build(work_dir=None, **kwargs):
        seen.append(work_dir)
        return spec.build(work_dir=work_dir, **kwargs)

    monkeypatch.setitem(MODELS._items, "merclip", replace(spec, build=build))
    config = RunConfig(
        model="merclip", protocol="loso-synth-3", size="tiny", folds="0", options={"epochs": 1}
    )
    result = run_bench(config, runs_dir=tmp_path / "runs")
    assert seen == [str(result.run_dir / "work" / "fold_000")]
    assert not (result.run_dir / "work" / "fold_000").exists()
    # A model that is not deep (and whose builder takes no work_dir) runs as before.
    chance = run_bench(RunConfig(model="chance", protocol="loso-synth-3", folds="0"), tmp_path / "runs")
    assert chance.folds_done == 1


@pytest.mark.slow
@pytest.mark.xfail(reason=_NOT_LEARNING, strict=True)
def test_merclip_tiny_beats_chance_on_loso_synth_3(tmp_path):
    load_all()
    t0 = time.perf_counter()
    chance = run_bench(RunConfig(model="chance", protocol="loso-synth-3", seed=0), runs_dir=tmp_path)
    config = RunConfig(model="merclip", protocol="loso-synth-3", size="tiny", seed=0)
    merclip = run_bench(config, runs_dir=tmp_path)
    elapsed = time.perf_counter() - t0
    uf1, uf1_chance = merclip.metrics["uf1"], chance.metrics["uf1"]
    assert uf1 >= uf1_chance + 0.15, (uf1, uf1_chance)
    assert elapsed < 600
