"""``make demo`` runs the reference rows, the classical and flow baselines and MER-CLIP at its CPU size."""

from __future__ import annotations

from mer import demo
from mer.registrations import load_all
from mer.zoo.api import MODELS


def test_demo_runs_merclip_tiny_and_every_other_model_at_its_default_size(tmp_path, monkeypatch):
    load_all()
    seen = []
    monkeypatch.setattr(demo, "run_bench", lambda config, runs_dir, **kw: seen.append(config) or config)
    announced = []
    demo.run_demo(tmp_path, on_run=announced.append)
    assert [c.model for c in seen] == list(demo.DEMO_MODELS)
    assert "merclip" in demo.DEMO_MODELS
    sizes = {c.model: c.size for c in seen}
    assert sizes.pop("merclip") == "tiny"
    assert all(size is None for size in sizes.values())  # the runner picks each model's default
    assert all(c.protocol == "loso-synth-3" and c.select == "last" for c in seen)
    assert "merclip (tiny)" in announced
    for name, size in demo.DEMO_SIZES.items():
        MODELS.get(name).check_size(size)  # a size the model really has
