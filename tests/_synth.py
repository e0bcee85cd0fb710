"""Small SynthME roots for tests (the default size is for the demo)."""

from __future__ import annotations

from pathlib import Path

from mer.protocols.config import add_dataset
from mer.protocols.synthme import write_synthme


def small_synth(
    root: Path,
    subjects: int = 5,
    clips: int = 6,
    seed: int = 0,
    register: bool = True,
    label_noise: float = 0.2,
) -> Path:
    """Write a small SynthME under ``root`` (and register it as ``synthme``); returns the root."""
    write_synthme(
        root,
        subjects=subjects,
        clips_per_subject=clips,
        seed=seed,
        width=64,
        height=64,
        frames=(12, 20),
        label_noise=label_noise,
    )
    if register:
        add_dataset("synthme", root)
    return root
