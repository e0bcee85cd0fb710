"""``mer env``: versions of mer and what it runs on, for bug reports and run records."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

# Distributions whose version decides what a run computes or reads.
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "opencv-contrib-python-headless",
    "decord",
    "open_clip_torch",
    "timm",
    "safetensors",
    "huggingface_hub",
    "scikit-learn",
    "scikit-image",
    "pandas",
    "typer",
    "rich",
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment_report() -> dict[str, Any]:
    """mer's version and commit, Python, the packages of :data:`PACKAGES`, CUDA, devices, memory and
    the folders mer uses."""
    from mer.protocols.config import mer_home
    from mer.protocols.runner import environment
    from mer.resources import accelerators, available_cores, available_memory

    base = environment()
    try:
        import cv2

        cv2_version = cv2.__version__
    except ImportError:  # pragma: no cover - a dependency
        cv2_version = None
    return {
        "mer": base.get("mer_version"),
        "git_commit": base.get("git_commit"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {**{p: _version(p) for p in PACKAGES}, "cv2 (imported)": cv2_version},
        "cuda": base.get("cuda"),
        "devices": {
            "cpu_cores": available_cores(),
            "memory_available_bytes": available_memory(),
            "cuda": accelerators(),
        },
        "paths": {
            "MER_HOME": str(mer_home()),
            "HF_HUB_CACHE": os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "(default)",
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"),
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """The plain-text form: one ``key  value`` line each, nested keys dotted."""
    lines: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            if not value:
                lines.append(f"{prefix:<40} none")
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        else:
            lines.append(f"{prefix:<40} {'-' if value is None else value}")

    walk("", report)
    return "\n".join(lines)
