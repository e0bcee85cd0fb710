"""The fault-injection suite collects one row per case for the fault table.

``MER_FAULT_TABLE=PATH pytest tests/faults -m "slow or not slow"`` writes the table (markdown) to PATH.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROWS: list[tuple[str, str, str, bool]] = []
TMP = re.compile(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/]+/")


@pytest.fixture
def fault_row():
    """``fault_row(case, message, exit_code, intact)``: one row of the fault table (pytest's temporary
    folders shortened to ``…/``, rich's log-time prefix dropped)."""

    def add(case: str, message: str, code: int | str, intact: bool) -> None:
        message = TMP.sub("…/", re.sub(r"^\[[^\]]*\]\s*", "", message.strip()))
        ROWS.append((case, message, str(code), intact))

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
