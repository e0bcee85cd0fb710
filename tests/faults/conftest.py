"""The fault-injection suite collects one row per case for the fault table.

``MER_FAULT_TABLE=PATH pytest tests/faults -m "slow or not slow"`` writes the table (markdown) to PATH.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROWS: list[tuple[str, str, int, bool]] = []


@pytest.fixture
def fault_row():
    """``fault_row(case, message, exit_code, intact)``: one row of the fault table."""

    def add(case: str, message: str, code: int, intact: bool) -> None:
        ROWS.append((case, message, code, intact))

    return add


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("MER_FAULT_TABLE")
    if not path or not ROWS:
        return
    lines = ["| case | message | exit code | finished work intact |", "|---|---|---|---|"]
    for case, message, code, intact in ROWS:
        msg = message.replace("|", "\\|")
        lines.append(f"| {case} | {msg} | {code} | {'yes' if intact else 'NO'} |")
    Path(path).write_text("\n".join(lines) + "\n")
