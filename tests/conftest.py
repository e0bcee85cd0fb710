"""Shared pytest fixtures.

Tests never touch the network or the user's cache: ``MER_HOME`` points into a temporary folder and
``HF_HUB_OFFLINE`` is set for the whole session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_mer_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty MER_HOME."""
    monkeypatch.setenv("MER_HOME", str(tmp_path_factory.mktemp("mer_home")))


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` beside the repository; the test is skipped when it is absent."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"../shared/fixtures not found at {path} (only the project's own fixtures run)")
    return path
