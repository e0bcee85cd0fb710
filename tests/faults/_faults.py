"""Helpers of the fault-injection suite: run ``mer`` in a subprocess with a fault armed, kill it at the
fault point, hash what was already finished."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

INJECT = Path(__file__).with_name("_inject.py")


@dataclass
class Done:
    """A finished ``mer`` subprocess."""

    code: int
    out: str

    @property
    def last_error(self) -> str:
        """The ``error:`` line (or the last line) of the output: what the user reads."""
        lines = [ln.strip() for ln in self.out.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        return (errors or lines or [""])[-1]


def _env(fault: str = "", marker: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400", "MER_FAULT": fault}
    env["MER_FAULT_MARKER"] = str(marker) if marker else os.devnull
    return env


def mer(*args: str, fault: str = "", cwd: Path | None = None, timeout: float = 300) -> Done:
    """Run ``mer ARGS`` (with ``fault`` armed) to its end."""
    p = subprocess.run(
        [sys.executable, str(INJECT), *map(str, args)],
        env=_env(fault),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Done(p.returncode, p.stdout + p.stderr)


def start(*args: str, fault: str = "", marker: Path | None = None) -> subprocess.Popen:
    """Start ``mer ARGS`` with ``fault`` armed; the fault point creates ``marker``."""
    return subprocess.Popen(
        [sys.executable, str(INJECT), *map(str, args)],
        env=_env(fault, marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` is true (fails if it ends or times out first)."""
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                f"process ended (code {proc.returncode}) before the fault point:\n{proc.stdout.read()}"
            )
        if time.time() > deadline:
            proc.kill()
            pytest.fail("fault point not reached in time")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def tree_sha(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (the finished work whose bytes must not change)."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out
