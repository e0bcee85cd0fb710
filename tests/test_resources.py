"""Issue 16 point 6: fold parallelism bounded by memory as well as cores, and said."""

from __future__ import annotations

import pytest

from mer.protocols.parallel import (
    BYTES_PER_PARAM,
    MEMORY_SHARE,
    PROCESS_BYTES,
    bound_folds,
    choose_parallel_folds,
    fold_footprint,
)
from mer.protocols.prepare import Recipe
from mer.registrations import load_all
from mer.zoo.api import MODELS

load_all()
GIB = 1 << 30


def test_base_merclip_sized_folds_on_a_32_core_box_are_bounded_by_memory():
    """The issue's case: 163 M parameters, 16 frames of 224², batch 8, 32 cores, 64 GiB free."""
    per_fold = fold_footprint(162_860_000, 8, 16, 224)
    assert per_fold > 162_860_000 * BYTES_PER_PARAM + PROCESS_BYTES  # activations counted too
    choice = bound_folds(32, 64 * GIB, per_fold, 162_860_000)
    assert choice.folds == int(64 * GIB * MEMORY_SHARE // per_fold) and 1 <= choice.folds < 32
    assert "bounded by memory" in choice.reason and "32 cores" in choice.reason and "162.9 M" in choice.reason
    roomy = bound_folds(32, 4096 * GIB, per_fold)
    assert roomy.folds == 32 and "bounded by cores" in roomy.reason
    assert bound_folds(32, 1 * GIB, per_fold).folds == 1  # never below one
    assert bound_folds(4, None, per_fold).folds == 4 and "memory unknown" in bound_folds(4, None, 1).reason


def test_choice_uses_the_models_parameter_count_and_the_memory_figure(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(32)), raising=False)
    recipe = Recipe(frames=8, size=48)
    monkeypatch.setenv("MER_MEMORY_BYTES", str(4 * GIB))
    choice = choose_parallel_folds(MODELS.get("merclip"), "tiny", recipe, 3, {})
    assert choice.params and choice.params > 10_000  # counted from the built network
    assert choice.per_fold > choice.params * BYTES_PER_PARAM
    assert choice.folds == min(32, int(4 * GIB * MEMORY_SHARE // choice.per_fold))
    assert choice.folds < 32 and choice.memory == 4 * GIB
    monkeypatch.setenv("MER_MEMORY_BYTES", str(1024 * GIB))
    assert choose_parallel_folds(MODELS.get("merclip"), "tiny", recipe, 3, {}).folds == 32


@pytest.mark.parametrize("n", [1, 5])
def test_one_core_means_one_fold(monkeypatch, n):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(n)), raising=False)
    monkeypatch.setenv("MER_MEMORY_BYTES", str(1024 * GIB))
    assert choose_parallel_folds(MODELS.get("ststnet"), "base", Recipe(frames=16, size=128), 3, {}).folds == n
