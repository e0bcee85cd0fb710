"""Benchmarks never touch the user's cache: ``MER_HOME`` points into a temporary folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_mer_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MER_HOME", str(tmp_path_factory.mktemp("mer_home")))
