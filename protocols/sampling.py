"""Temporal samplers: which T frames of a clip are kept.

Both samplers return frame *numbers* (the dataset's own), in temporal order, so that position 0 is
always the onset: LocalStaticFaceMix blends the partner clip's position 0 and relies on it.
"""

from __future__ import annotations

import numpy as np

from mer.errors import BadInputError, OptionValueError
from mer.registry import Registry

SAMPLERS: Registry = Registry("sampler")


def _linspace_frames(a: int, b: int, n: int) -> list[int]:
    """``n`` frame numbers spread evenly over ``[a, b]`` with both ends kept (repeats when short)."""
    if n <= 0:
        return []
    if n == 1:
        return [a]
    return [int(round(x)) for x in np.linspace(a, b, n)]


@SAMPLERS.register("keyframe")
def keyframe_indices(onset: int, apex: int | None, offset: int, t: int = 16) -> list[int]:
    """Key-frame sequence (SPEC A.1, the assumed ME-PLAN rule).

    ``t // 2`` frames linearly spaced over ``[onset, apex]`` (both kept), then ``t - t // 2`` over
    ``[apex, offset]`` (both kept), so the apex appears twice. When the apex is unknown it
    is taken at the middle of the clip (callers that can estimate it should pass the estimate).

    Args:
        onset: Onset frame number.
        apex: Apex frame number, or None.
        offset: Offset frame number (>= onset).
        t: Number of frames to return.

    Raises:
        ValueError: ``offset < onset`` or ``t < 3``.
    """
    if offset < onset:
        raise BadInputError(f"offset {offset} before onset {onset}")
    if t < 3:
        raise OptionValueError("key-frame sampling needs t >= 3 to keep onset, apex and offset")
    if apex is None or not onset <= apex <= offset:
        apex = (onset + offset) // 2
    first = t // 2
    head = _linspace_frames(onset, apex, first)
    tail = _linspace_frames(apex, offset, t - first)
    return head + tail


@SAMPLERS.register("uniform")
def uniform_indices(
    onset: int, apex: int | None, offset: int, t: int = 16, rng: np.random.Generator | None = None
) -> list[int]:
    """TSN-style uniform sampling over ``[onset, offset]`` (the authors' CAS(ME)³ loader).

    The clip is cut into ``t`` equal segments; the test form (``rng`` None) takes each segment's
    middle, the train form a random frame in each. Clips shorter than ``t`` frames are looped.
    """
    if offset < onset:
        raise BadInputError(f"offset {offset} before onset {onset}")
    n = offset - onset + 1
    if n < t:
        return [onset + (i % n) for i in range(t)]
    edges = np.linspace(0, n, t + 1)
    if rng is None:
        pos = ((edges[:-1] + edges[1:]) / 2).astype(int)
    else:
        pos = np.array(
            [rng.integers(int(edges[i]), max(int(edges[i]) + 1, int(edges[i + 1]))) for i in range(t)]
        )
    pos[0] = 0  # position 0 is the onset
    return [onset + int(p) for p in np.clip(pos, 0, n - 1)]


def uniform_pool_indices(onset: int, offset: int, t: int = 16, pool: int = 3) -> list[list[int]]:
    """TSN segments with their frames for both forms of the authors' CAS(ME)³ loader.

    The clip ``[onset, offset]`` is cut into ``t`` equal segments as :func:`uniform_indices` does. Slot 0
    of a segment is the test form's frame (its centre); slots ``1..pool-1`` hold the frames the training
    form draws from (every frame of the segment when there are at most ``pool - 1``, repeated to fill;
    spread evenly over it when there are more), so drawing one of them uniformly is the authors' random
    frame per segment. Segment 0 is the onset only (position 0 stays the onset; LSFM relies on it);
    clips shorter than ``t`` frames are looped, as in :func:`uniform_indices`.

    Returns:
        ``t`` lists of ``pool`` frame numbers.
    """
    if pool < 2:
        raise OptionValueError("a pool needs at least 2 slots: the test frame and one training frame")
    centre = uniform_indices(onset, None, offset, t)
    n = offset - onset + 1
    edges = np.linspace(0, n, t + 1)
    out = []
    for i in range(t):
        if i == 0 or n < t:
            out.append([centre[i]] * pool)
            continue
        lo, hi = int(edges[i]), max(int(edges[i]) + 1, int(edges[i + 1]))
        train = [onset + p for p in range(lo, min(hi, n))]
        if len(train) > pool - 1:
            train = [train[int(round(j))] for j in np.linspace(0, len(train) - 1, pool - 1)]
        out.append([centre[i], *(train[j % len(train)] for j in range(pool - 1))])
    return out
