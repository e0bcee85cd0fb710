"""Small SynthME roots for tests (the default size is for the demo)."""

from __future__ import annotations

from pathlib import Path

from mer.protocols.config import add_dataset
from mer.protocols.runner import RunConfig, run_bench
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


def tiny_run(runs_dir: Path, model: str = "merclip", run_id: str | None = None) -> Path:
    """Train ``model`` at size tiny for one epoch on fold 0 of ``loso-synth-3``, keeping its weights
    (for tests of what reads a finished run: predict, explain, the zoo); returns the run folder."""
    config = RunConfig(
        model=model,
        protocol="loso-synth-3",
        size="tiny",
        folds="0",
        options={"epochs": 1},
        save_weights="last",
    )
    return run_bench(config, runs_dir=runs_dir, run_id=run_id).run_dir
