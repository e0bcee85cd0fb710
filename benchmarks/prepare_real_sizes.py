"""Preparation time of the real datasets, measured on stand-ins of their frame size (README, "Real data").

The licensed datasets are not here, so each is stood in for by clips of its raw frame size: a cluttered
frame with scikit-image's astronaut (a real face) pasted off-centre, 24 numbered JPEG frames per clip
(6 distinct frames, hard-linked, so reading costs a real decode but the disk cache is warm). Each
stand-in is prepared with the preparation ``mer bench run --model merclip`` resolves for that dataset
(face crop on the raw releases, none on CASME II ``Cropped``), 16 key frames of 224², 2 workers.

    PYTHONPATH=... python benchmarks/prepare_real_sizes.py [--clips 40]

Prints, per dataset, the wall and CPU seconds for ``--clips`` clips and the per-clip figures; the
whole-dataset numbers in the README are these per-clip figures times the dataset's clip count.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

# name, frame (width, height), clips in the dataset, alignment of its default preparation
STANDINS = [
    ("CASME II raw", (640, 480), 255, "landmarks"),
    ("CASME II Cropped", (280, 340), 255, "none"),
    ("SAMM raw", (2040, 1088), 159, "landmarks"),
    ("CAS(ME)3 Part A", (1280, 720), 860, "landmarks"),
]


def _frames(size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    from skimage.data import astronaut

    w, h = size
    head = astronaut()[0:260, 100:350]
    scale = 0.8 * h / head.shape[0] if w > 400 else w / head.shape[1]
    head = cv2.resize(head, None, fx=scale, fy=scale)
    hh, hw = min(head.shape[0], h), min(head.shape[1], w)
    base = np.clip(rng.normal(120, 30, (h, w, 3)), 0, 255).astype(np.uint8)
    x, y = int(rng.integers(0, w - hw + 1)), int(rng.integers(0, h - hh + 1))
    base[y : y + hh, x : x + hw] = head[:hh, :hw]
    return [cv2.convertScaleAbs(base, alpha=1.0, beta=2 * t) for t in range(6)]


def write_standin(root: Path, size: tuple[int, int], clips: int, seed: int = 0) -> Path:
    """``clips`` CASME II-style clips of ``size`` frames under ``root`` and their CSV sheet."""
    rng = np.random.default_rng(seed)
    rows = ["Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion"]
    for k in range(clips):
        folder = root / f"sub{k % 20 + 1:02d}" / f"EP{k:03d}"
        folder.mkdir(parents=True)
        distinct = []
        for t, img in enumerate(_frames(size, rng)):
            path = folder / f"img{t + 1}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            distinct.append(path)
        for n in range(7, 25):
            os.link(distinct[n % 6], folder / f"img{n}.jpg")
        rows.append(f"{k % 20 + 1:02d},EP{k:03d},1,12,24,12,happiness")
    sheet = root / "CASME2-coding-standin.csv"
    sheet.write_text("\n".join(rows) + "\n")
    return sheet


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MER_HOME"] = str(Path(tmp) / "home")
        import mer.protocols.real  # noqa: F401  (registers casme2)
        from mer.protocols.prepare import Recipe, prepare

        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.workers} workers")
        for name, size, total, align in STANDINS:
            root = Path(tmp) / name.replace(" ", "_")
            sheet = write_standin(root, size, args.clips)
            recipe = Recipe(frames=16, size=224, align=align)
            t0, c0 = time.perf_counter(), cpu_seconds()
            prepared = prepare("casme2", root, recipe, annotations=sheet, workers=args.workers)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            al = prepared.alignment
            print(
                f"{name:<18} {size[0]}x{size[1]} align={align:<9} {args.clips} clips: wall {wall:6.1f} s, "
                f"cpu {cpu:6.1f} s; per clip wall {wall / args.clips:.3f} s cpu {cpu / args.clips:.3f} s; "
                f"{total} clips ≈ wall {wall / args.clips * total / 60:.1f} min, "
                f"cpu {cpu / args.clips * total / 60:.1f} min; aligners {al.get('clips_per_aligner')}"
            )


if __name__ == "__main__":
    main()
