"""What reading frames ahead costs a flow model that never uses them: STSTNet trained on the cached flow
with the shared loop's frame read-ahead on (``prefetch=2``, what flow models did before) and off
(``prefetch=0``, what they do now).

    python benchmarks/flow_train_frames.py --clips 192 --epochs 10
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=192)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("MER_HOME", tempfile.mkdtemp(prefix="mer-flow-frames-"))
    import numpy as np

    from mer.protocols.flow import FlowConfig, attach_flow
    from mer.protocols.prepare import Recipe, prepare
    from mer.protocols.protocol import PROTOCOLS
    from mer.protocols.synthme import write_synthme
    from mer.registrations import load_all
    from mer.zoo.api import MODELS

    load_all()
    root = Path(os.environ["MER_HOME"]) / "synthme"
    write_synthme(root, subjects=16, clips_per_subject=-(-args.clips // 16), width=128, height=128)
    prepared = prepare("synthme", root, Recipe(frames=16, size=128))
    clips = attach_flow(prepared, prepared.clipset(PROTOCOLS.get("loso-synth-3")), FlowConfig("farneback"))
    print(
        f"{len(clips)} clips, frames {prepared.store.shape[1:]} uint8 "
        f"({prepared.store[0].nbytes / 1e6:.2f} MB/clip)"
    )
    times: dict[int, list[float]] = {2: [], 0: []}
    cpu: dict[int, list[float]] = {2: [], 0: []}
    for _ in range(args.repeats):
        for prefetch in (2, 0):
            est = MODELS.get("ststnet").build(num_classes=3, seed=0, device="cpu", epochs=args.epochs)
            est.config.prefetch = prefetch
            start, c0 = time.perf_counter(), time.process_time()
            est.fit(clips)
            times[prefetch].append(time.perf_counter() - start)
            cpu[prefetch].append(time.process_time() - c0)
    for prefetch, ts in times.items():
        per_epoch = np.median(ts) / args.epochs
        print(
            f"prefetch={prefetch}: median {np.median(ts):.2f} s wall, {np.median(cpu[prefetch]):.2f} s CPU "
            f"for {args.epochs} epochs ({per_epoch:.3f} s/epoch wall)"
        )


if __name__ == "__main__":
    main()
