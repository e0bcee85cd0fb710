import numpy as np
import pytest

from mer.protocols.sampling import keyframe_indices, uniform_indices


@pytest.mark.parametrize(
    ("onset", "apex", "offset", "t"), [(10, 25, 60, 16), (1, 2, 3, 16), (5, 5, 40, 8), (0, 39, 39, 16)]
)
def test_keyframes_keep_onset_apex_offset(onset, apex, offset, t):
    idx = keyframe_indices(onset, apex, offset, t)
    assert len(idx) == t
    assert idx[0] == onset and idx[-1] == offset and apex in idx
    assert idx == sorted(idx)  # temporal order: position 0 is the onset
    assert all(onset <= i <= offset for i in idx)


def test_keyframes_hand_example():
    # 8 over [0, 14] and 8 over [14, 21]: linspace rounded to frames, the apex twice.
    assert keyframe_indices(0, 14, 21, 16) == [0, 2, 4, 6, 8, 10, 12, 14, 14, 15, 16, 17, 18, 19, 20, 21]


def test_keyframes_unknown_apex_uses_middle():
    idx = keyframe_indices(10, None, 30, 16)
    assert 20 in idx and idx[0] == 10 and idx[-1] == 30


def test_keyframes_reject_bad_range():
    with pytest.raises(ValueError, match="before onset"):
        keyframe_indices(10, 12, 5, 16)


def test_uniform_test_and_train_forms():
    idx = uniform_indices(100, None, 131, 16)
    assert len(idx) == 16 and idx[0] == 100 and idx == sorted(idx)
    assert all(100 <= i <= 131 for i in idx)
    rng = np.random.default_rng(0)
    train = uniform_indices(100, None, 131, 16, rng)
    assert train[0] == 100 and all(100 <= i <= 131 for i in train)
    # Short clips loop.
    assert uniform_indices(0, None, 2, 6) == [0, 1, 2, 0, 1, 2]
