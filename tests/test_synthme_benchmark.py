"""SynthME must rank models: motion-aware > motion-blind ≈ chance, nobody near perfect (issue 2)."""

from mer.protocols.runner import RunConfig, run_bench
from mer.registrations import load_all

load_all()


def test_default_synthme_ranks_lbptop_above_apex_only_and_chance(tmp_path):
    uf1 = {}
    for model in ("chance", "lbp-apex-svm", "lbptop-svm"):
        r = run_bench(RunConfig(model=model, protocol="loso-synth-3"), runs_dir=tmp_path / "runs")
        assert r.folds_done == 16
        uf1[model] = r.metrics["uf1"]
    assert uf1["lbptop-svm"] >= uf1["chance"] + 0.15, uf1
    assert uf1["lbptop-svm"] >= uf1["lbp-apex-svm"] + 0.15, uf1  # the apex frame alone is not enough
    assert uf1["lbptop-svm"] < 0.9, uf1  # hard enough to rank models
