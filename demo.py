"""``make demo``: SynthME → prepare → reference rows, LBP-TOP and STSTNet on ``loso-synth-3`` → table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mer.protocols.runner import RunConfig, RunResult, run_bench

DEMO_MODELS = ("chance", "majority", "lbptop-svm", "ststnet")


def run_demo(
    runs_dir: Path,
    models: tuple[str, ...] = DEMO_MODELS,
    protocol: str = "loso-synth-3",
    on_run: Callable[[str], None] | None = None,
    **callbacks,
) -> list[RunResult]:
    """Run the demo models on ``protocol`` (SynthME is generated and prepared on first use)."""
    results = []
    for model in models:
        if on_run:
            on_run(model)
        results.append(run_bench(RunConfig(model=model, protocol=protocol), runs_dir=runs_dir, **callbacks))
    return results
