"""``make demo``: SynthME → prepare → reference rows, LBP-TOP, STSTNet and MER-CLIP (tiny) on
``loso-synth-3`` → table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mer.protocols.runner import RunConfig, RunResult, run_bench

DEMO_MODELS = ("chance", "majority", "lbptop-svm", "ststnet", "merclip")
# Sizes other than the model's default: MER-CLIP's paper size needs a GPU, its CPU size is ``tiny``.
DEMO_SIZES = {"merclip": "tiny"}


def run_demo(
    runs_dir: Path,
    models: tuple[str, ...] = DEMO_MODELS,
    protocol: str = "loso-synth-3",
    on_run: Callable[[str], None] | None = None,
    **callbacks,
) -> list[RunResult]:
    """Run the demo models on ``protocol`` (SynthME is generated and prepared on first use), each at its
    :data:`DEMO_SIZES` size or its default one."""
    results = []
    for model in models:
        size = DEMO_SIZES.get(model)
        if on_run:
            on_run(model if size is None else f"{model} ({size})")
        config = RunConfig(model=model, protocol=protocol, size=size)
        results.append(run_bench(config, runs_dir=runs_dir, **callbacks))
    return results
