"""What TV-L1 costs: per onset/apex pair at the flow models' sizes, and the flow preparation of a
composite-sized set (MEGC2019: 442 clips) on 2 cores.

    python benchmarks/flow_cost.py                 # per-pair table + a 64-clip preparation, extrapolated
    python benchmarks/flow_cost.py --clips 442     # the whole composite-sized set

Pairs are the onset and apex frames of SynthME clips prepared as the flow models prepare them (16 key
frames, face region at 128×128), resized to each side. Both wall and CPU time are printed: on a shared
machine the wall time grows with the other jobs, the CPU time (one OpenCV thread) much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

SIDES = (
    28,
    56,
    128,
    224,
)  # model input (STSTNet, OFF-ApexNet, HTNet), cached flow, flow computed, a 224 crop


def _pairs(prepared, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from mer.protocols.flow import _grey

    return [
        (_grey(prepared.store[i][0]), _grey(prepared.store[i][8]))
        for i in range(min(n, len(prepared.samples)))
    ]


def per_pair(pairs: list[tuple[np.ndarray, np.ndarray]], repeats: int) -> None:
    from mer.protocols.flow import dense_flow

    cv2.setNumThreads(1)
    print("| side | method | wall ms / pair (median) | CPU ms / pair (median) |")
    print("|---|---|---|---|")
    for side in SIDES:
        resized = [(cv2.resize(a, (side, side), interpolation=cv2.INTER_AREA),
                    cv2.resize(b, (side, side), interpolation=cv2.INTER_AREA)) for a, b in pairs]  # fmt: skip
        for method in ("tvl1", "farneback"):
            walls, cpus = [], []
            for _ in range(repeats):
                for a, b in resized:
                    w, c = time.perf_counter(), time.process_time()
                    dense_flow(a, b, method)
                    walls.append(time.perf_counter() - w)
                    cpus.append(time.process_time() - c)
            print(f"| {side}×{side} | {method} | {1e3 * statistics.median(walls):.2f} | "
                  f"{1e3 * statistics.median(cpus):.2f} |")  # fmt: skip
    cv2.setNumThreads(-1)


def preparation(root: Path, total: int):
    """Frames then flow of ``clips`` clips with 2 workers; projected to ``total`` clips."""
    from mer.protocols.flow import FlowConfig, ensure_flow
    from mer.protocols.prepare import Recipe, prepare

    recipe = Recipe(frames=16, size=128)
    c0, w0 = time.process_time(), time.perf_counter()
    prepared = prepare("synthme", root, recipe, workers=2)
    c1, w1 = time.process_time(), time.perf_counter()
    for method in ("tvl1", "farneback"):
        cs, ws = time.process_time(), time.perf_counter()
        ensure_flow(prepared, FlowConfig(method), workers=2)
        ce, we = time.process_time(), time.perf_counter()
        n = len(prepared.samples)
        wall, cpu = (we - ws) * total / n, (ce - cs) * total / n / 2
        print(f"flow {method}: {n} clips in {we - ws:.1f} s wall, {ce - cs:.1f} s CPU "
              f"→ {total} clips: {wall:.0f} s wall, {cpu:.0f} s on 2 idle cores")  # fmt: skip
    print(f"frames (16 × 128², SynthME 128² sources): {len(prepared.samples)} clips in {w1 - w0:.1f} s wall, "
          f"{c1 - c0:.1f} s CPU")  # fmt: skip
    return prepared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=64, help="clips prepared (442 = the whole composite size)")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("MER_HOME", tempfile.mkdtemp(prefix="mer-flow-cost-"))
    from mer.protocols.synthme import write_synthme

    print(f"cv2 {cv2.__version__}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    root = Path(os.environ["MER_HOME"]) / "synthme"
    subjects = max(2, args.clips // 13)
    write_synthme(
        root, subjects=subjects, clips_per_subject=-(-args.clips // subjects), width=128, height=128
    )
    prepared = preparation(root, 442)
    per_pair(_pairs(prepared, args.pairs), args.repeats)


if __name__ == "__main__":
    main()
