"""The shared memory a dead vLLM leaves in ``/dev/shm``.

vLLM's processes talk through Python shared-memory segments (``/dev/shm/psm_*``, a few
MB each). A vLLM that exits cleanly unlinks them; one killed with SIGKILL (or by the
kernel's OOM killer) cannot, and the memory stays taken until the machine reboots. The
managed mode notes which segments its child holds once it serves, and after the child
is gone releases those that no live process holds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - listed and unlinked by name here, never created
PREFIX = "psm_"


def segments() -> set[str]:
    """The names of the Python shared-memory segments now in ``/dev/shm``."""
    if not SHARED_MEMORY.is_dir():
        return set()
    return {path.name for path in SHARED_MEMORY.glob(PREFIX + "*")}


def held_by_group(group: int) -> set[str]:
    """The segments mapped or held open by the processes of process group ``group``."""
    return _held(lambda pid: _group_of(pid) == group)


def held_by_anyone() -> set[str]:
    """The segments some live process maps or holds open."""
    return _held(lambda pid: True)


def release_orphans(candidates: set[str]) -> list[str]:
    """Unlink those of ``candidates`` that no live process holds; return their names.

    A segment of a process still running is mapped by it, so it is never taken.
    """
    orphaned = sorted((candidates & segments()) - held_by_anyone())
    for name in orphaned:
        with contextlib.suppress(FileNotFoundError):
            (SHARED_MEMORY / name).unlink()
    return orphaned


def _held(wanted: Callable[[int], bool]) -> set[str]:
    held: set[str] = set()
    prefix = f"{SHARED_MEMORY}/{PREFIX}"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or not wanted(int(entry.name)):
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry.name}/maps") as maps:
            for line in maps:
                if prefix in line:
                    held.add(PREFIX + line.split(prefix, 1)[1].split()[0])
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd.path)
                    if target.startswith(prefix):
                        held.add(Path(target).name)
    return held


def _group_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[2])  # after the command name: state, ppid, pgrp
