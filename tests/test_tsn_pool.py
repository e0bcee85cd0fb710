"""TSN sampling of the official CAS(ME)³ recipe: a random frame per segment in training, the centre at test
(SPEC A.1: "train: split into 16 equal segments over [0, n−1] and pick a random index in each; test: pick
a fixed position in each segment")."""

from __future__ import annotations

import numpy as np
from _realroots import as_casme2, make_synth

import mer.protocols.real  # noqa: F401
from mer.protocols.clipset import ClipSet
from mer.protocols.prepare import Recipe, prepare
from mer.protocols.sampling import uniform_indices, uniform_pool_indices
from mer.zoo.loader import read_frames


def test_pool_holds_the_test_frame_and_every_frame_training_may_draw():
    onset, n, t = 100, 30, 16
    pools = uniform_pool_indices(onset, onset + n - 1, t, pool=3)
    assert [p[0] for p in pools] == uniform_indices(onset, None, onset + n - 1, t)  # slot 0: test form
    assert set(pools[0]) == {onset}  # position 0 stays the onset
    for i in range(1, t):
        lo, hi = int(i * n / t), int((i + 1) * n / t)  # segment i of 16 equal ones over the 30 frames
        assert set(pools[i][1:]) == {onset + f for f in range(lo, max(hi, lo + 1))}


def _pooled_store() -> np.ndarray:
    """2 clips, 4 segments, 3 slots, 1×1 frames whose value says (clip, segment, slot)."""
    store = np.zeros((2, 4, 3, 1, 1, 3), np.uint8)
    for c in range(2):
        for s in range(4):
            for k in range(3):
                store[c, s, k] = 100 * c + 10 * s + k
    return store


def test_clipset_gives_the_test_frame_unless_drawing_and_draws_anew_each_epoch():
    clips = ClipSet(_pooled_store(), np.arange(2), [None, None], np.zeros(2), ("a",))  # type: ignore[list-item]
    assert clips.clip_shape == (4, 1, 1, 3)
    test = clips.frames()
    assert (test[..., 0] % 10 == 0).all()  # slot 0 everywhere
    draws = [clips.drawn((7, epoch)).frames()[..., 0, 0, 0] % 10 for epoch in range(6)]
    assert all(((d == 1) | (d == 2)).all() for d in draws)  # only the training slots
    assert len({d.tobytes() for d in draws}) > 1  # a new draw each epoch
    again = clips.drawn((7, 3))
    assert np.array_equal(again.frames(), again.frames())  # the same key draws the same frames
    assert np.array_equal(read_frames(again, np.array([1, 0]), False), again.frames([1, 0]))  # prefetch path
    assert np.array_equal(again.subset([1]).frames(), again.frames([1]))


def test_prepare_caches_the_pool_and_the_clipset_reads_clips(tmp_path):
    synth = tmp_path / "synth"
    samples = make_synth(synth, subjects=2, clips=2)
    sheet = as_casme2(synth, samples, tmp_path / "root")
    recipe = Recipe(frames=4, size=32, sampler="uniform", pool=3)
    prepared = prepare("casme2", tmp_path / "root", recipe, annotations=sheet)
    assert prepared.store.shape == (4, 4, 3, 32, 32, 3)
    plain = prepare(
        "casme2", tmp_path / "root", Recipe(frames=4, size=32, sampler="uniform"), annotations=sheet
    )
    # slot 0 of the pooled cache is exactly the plain TSN test frames
    assert np.array_equal(np.asarray(prepared.store[:, :, 0]), np.asarray(plain.store))
