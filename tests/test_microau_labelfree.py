"""Emotion-label-free MER with Micro-AU CLIP: AU labels only, emotions from AUs, shown as a reconstruction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _synth import small_synth

from mer.baselines.microau_clip.estimators import LabelFreeMER
from mer.protocols.au_protocols import SYNTH_AUS
from mer.protocols.clipset import ClipSet
from mer.protocols.prepare import Recipe
from mer.protocols.protocol import PROTOCOLS
from mer.protocols.runner import RunConfig, load_protocol_data, run_bench
from mer.registrations import load_all

load_all()


@pytest.fixture
def synth_clips(tmp_path):
    small_synth(tmp_path / "synth", subjects=3, clips=8)
    _, clips = load_protocol_data(PROTOCOLS.get("loso-synth-3"), Recipe(frames=3, size=64))
    return clips


def test_emotion_labels_never_reach_training(synth_clips):
    # The "prompts" scorer: it also trains the combination-prompt alignment (the rule scorer's detector
    # is the same network without it, and runs through the runner below).
    clips = synth_clips
    train, test = (
        clips.subset(np.arange(0, len(clips) - 4)),
        clips.subset(np.arange(len(clips) - 4, len(clips))),
    )
    runs = []
    for labels in (train.labels, (train.labels + 1) % 3):  # the same clips, other emotion labels
        relabelled = ClipSet(train.store, train.rows, train.samples, labels, train.class_names)
        est = LabelFreeMER(3, size="tiny", seed=0, scorer="prompts", epochs=1)
        est.fit(relabelled)
        # The detector was trained on AU targets named after the AUs, not on the emotion classes.
        assert est.vocabulary == SYNTH_AUS and est.classes == ("negative", "positive", "surprise")
        runs.append(est.predict(test))
    a, b = runs
    assert a.probs.shape == (4, 3) and np.allclose(a.probs.sum(1), 1)
    assert np.array_equal(a.probs, b.probs) and np.array_equal(a.extras["au_probs"], b.extras["au_probs"])
    assert a.extras["au_probs"].shape == (4, len(SYNTH_AUS))


def test_labelfree_runs_on_loso_synth_3_and_is_labelled(tmp_path):
    from mer.leaderboard.build import build_leaderboard

    small_synth(tmp_path / "synth", subjects=3, clips=6)
    res = run_bench(
        RunConfig(
            model="microau-clip-labelfree", protocol="loso-synth-3", size="tiny", options={"epochs": 1}
        ),
        runs_dir=tmp_path / "runs",
    )
    assert res.folds_done == 3 and {"uf1", "uar", "wf1"} <= set(res.metrics)
    assert json.loads((res.run_dir / "run.json").read_text())["reconstruction"] is True
    board = build_leaderboard(tmp_path / "runs", tmp_path / "LB.md", protocols=["loso-synth-3"])
    assert "microau-clip-labelfree (reconstruction)" in board.text
