"""How many cores this process may really use: its CPU affinity, and a container's CPU quota.

``os.cpu_count()`` counts the host's cores: under ``docker run --cpus=2`` or a Kubernetes CPU
limit on a 32-core node it says 32, and an engine sized from it runs 32 threads on 2 cores'
worth of time, throttled.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may run on, capped by its cgroup's CPU quota (rounded up); at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota(cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """The CPU quota in cores (``cpu.max`` of cgroup v2, ``cpu.cfs_quota_us`` of v1); None when unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        cores = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):  # "max": no quota; v1 writes -1
        return None
    return cores if cores > 0 else None
