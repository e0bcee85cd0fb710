"""``make demo``: SynthME → prepare → reference rows, LBP-TOP, STSTNet and MER-CLIP (tiny) on
``loso-synth-3`` → table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mer.protocols.runner import RunConfig, RunResult, run_bench
from mer.zoo.api import MODELS

DEMO_MODELS = ("chance", "majority", "lbptop-svm", "ststnet", "merclip")


def run_demo(
    runs_dir: Path,
    models: tuple[str, ...] = DEMO_MODELS,
    protocol: str = "loso-synth-3",
    on_run: Callable[[str], None] | None = None,
    **callbacks,
) -> list[RunResult]:
    """Run the demo models on ``protocol`` (SynthME is generated and prepared on first use); deep models
    that come in a CPU size run at ``tiny``."""
    results = []
    for model in models:
        size = "tiny" if "tiny" in MODELS.get(model).sizes else None
        if on_run:
            on_run(model if size is None else f"{model} ({size})")
        config = RunConfig(model=model, protocol=protocol, size=size)
        results.append(run_bench(config, runs_dir=runs_dir, **callbacks))
    return results
