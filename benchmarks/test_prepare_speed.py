"""Speed of preparation and of loading prepared clips (``make bench``; skipped from ``make test``).

- prepare: SynthME written at 640×480, prepared to 16×224×224 key-frame clips, with 1 and 2 workers
  (the machine has two cores; the second worker should nearly double the rate);
- load: random batches of prepared 16×224×224 clips from the memory-mapped cache into one uint8 batch
  tensor, the way the training loop builds its input; the target is at least 500 clips/s.

Each test prints its clips/s and stores it in the benchmark's ``extra_info``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from mer.protocols.clipset import ClipSet
from mer.protocols.prepare import Recipe, prepare
from mer.protocols.sample import Sample

LOAD_TARGET = 500.0  # clips/s, 16×224×224


@pytest.fixture(scope="module")
def synthme_640(tmp_path_factory):
    """A small SynthME at 640×480 (the size of a real face recording), written once."""
    import mer.protocols.synthme  # noqa: F401  (registers the dataset)
    from mer.protocols.synthme import write_synthme

    root = tmp_path_factory.mktemp("synthme640")
    sheet = write_synthme(root, subjects=3, clips_per_subject=4, width=640, height=480, frames=(20, 30))
    return root, sheet


@pytest.mark.parametrize("workers", [1, 2])
def test_prepare_clips_per_second(benchmark, synthme_640, tmp_path, monkeypatch, workers):
    root, sheet = synthme_640
    recipe = Recipe(frames=16, size=224)
    rounds = iter(range(1000))
    times: list[float] = []

    def fresh_cache():
        # Each round prepares from scratch: a new MER_HOME, so the cache of the previous round is not hit.
        monkeypatch.setenv("MER_HOME", str(tmp_path / f"home{next(rounds)}"))
        return (), {}

    def run():
        t = time.perf_counter()
        out = prepare("synthme", root, recipe, annotations=sheet, workers=workers)
        times.append(time.perf_counter() - t)
        assert out.created
        return out

    prepared = benchmark.pedantic(run, setup=fresh_cache, rounds=3, iterations=1, warmup_rounds=0)
    n = len(prepared.samples)
    rate = n / min(times)
    benchmark.extra_info["clips_per_s"] = round(rate, 1)
    print(f"\nprepare (SynthME 640x480 -> 16x224x224, workers={workers}): {rate:.1f} clips/s ({n} clips)")


@pytest.fixture(scope="module")
def prepared_store(tmp_path_factory):
    """A prepared-cache-shaped array of 128 clips (16×224×224×3 uint8, ~308 MB), memory-mapped from disk."""
    path = tmp_path_factory.mktemp("store") / "frames.npy"
    n = 128
    store = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 16, 224, 224, 3))
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, size=(16, 224, 224, 3), dtype=np.uint8)
    for i in range(n):
        store[i] = np.roll(block, i, axis=1)
    store.flush()
    del store
    store = np.load(path, mmap_mode="r")
    samples = [Sample("bench", f"{i % 8:02d}", f"c{i}", f"c{i}", 0, 8, 15, "surprise") for i in range(n)]
    return ClipSet(store, np.arange(n), samples, np.zeros(n, dtype=np.int64), ("surprise",))


def test_load_prepared_clips_per_second(benchmark, prepared_store):
    clips = prepared_store
    batch = 32
    rng = np.random.default_rng(0)
    order = rng.permutation(len(clips))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    times: list[float] = []

    def epoch():
        t = time.perf_counter()
        for idx in batches:
            x = torch.from_numpy(clips.frames(idx))  # [B, T, H, W, 3] uint8, as the training loop builds it
            assert x.shape == (len(idx), 16, 224, 224, 3)
        times.append(time.perf_counter() - t)

    benchmark.pedantic(epoch, rounds=5, iterations=1, warmup_rounds=1)
    rate = len(clips) / float(np.median(times))
    benchmark.extra_info["clips_per_s"] = round(rate, 1)
    print(f"\nload prepared clips (16x224x224, batch {batch}): {rate:.0f} clips/s")
    assert rate >= LOAD_TARGET, f"loading reached {rate:.0f} clips/s, below the {LOAD_TARGET:.0f} target"
