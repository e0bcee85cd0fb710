"""End to end: ``mer bench run --model merclip --size tiny --protocol loso-synth-3`` on the CPU.

Slow (several minutes on 2 cores): it trains the tiny model on every LOSO fold of SynthME.
"""

from __future__ import annotations

import time

import pytest

from mer.catalog import load_all
from mer.protocols.runner import RunConfig, run_bench


@pytest.mark.slow
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
