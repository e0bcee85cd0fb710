"""What this machine offers a run: cores, memory, accelerators (for fold parallelism and ``mer env``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Bytes left under a cgroup (container) memory limit, when there is one."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            text = Path(limit_file).read_text().strip()
            if text == "max" or int(text) >= 1 << 60:
                return None
            return max(0, int(text) - int(Path(usage_file).read_text().strip()))
        except (OSError, ValueError):
            continue
    return None


def available_memory() -> int | None:
    """Bytes of memory a new process can use now: the smaller of the system's available memory and the
    room left under a container limit; ``MER_MEMORY_BYTES`` overrides both (tests, schedulers that know
    better). None when it cannot be told."""
    forced = os.environ.get("MER_MEMORY_BYTES")
    if forced:
        return int(float(forced))
    known = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    return min(known) if known else None


def accelerators() -> list[dict[str, Any]]:
    """Each visible CUDA device: index, name, total and free memory (bytes)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return []
    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append({"index": i, "name": torch.cuda.get_device_name(i), "total": total, "free": free})
    return out
