"""The shared memory a dead vLLM leaves in ``/dev/shm``.

vLLM's processes talk through Python shared-memory segments (``/dev/shm/psm_*``, a few
MB each) and lock with multiprocessing's named semaphores (``/dev/shm/sem.mp-*``). A vLLM
that exits cleanly unlinks them; one killed with SIGKILL (or by the kernel's OOM killer)
cannot, and they stay until the machine reboots. After its child is gone, the managed mode
releases those that appeared while the child ran and that no live process holds.

Holders are found by inode, not by name: glibc maps a semaphore under a temporary name
that it then renames, so ``/proc/*/maps`` shows that old name, marked deleted.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - listed and unlinked by name here, never created
PREFIXES = ("psm_", "sem.mp-")  # Python's shared memory, multiprocessing's semaphores


def segments() -> set[str]:
    """The names of the Python shared-memory segments and semaphores now in ``/dev/shm``."""
    return set(_inodes())


def _inodes() -> dict[str, int]:
    """Each segment's name and inode."""
    if not SHARED_MEMORY.is_dir():
        return {}
    found = {}
    for entry in os.scandir(SHARED_MEMORY):
        if entry.name.startswith(PREFIXES):
            with contextlib.suppress(OSError):
                found[entry.name] = entry.inode()
    return found


def held_by_anyone() -> set[str]:
    """The segments some live process maps or holds open."""
    by_inode = {inode: name for name, inode in _inodes().items()}
    held: set[int] = set()
    folder = f"{SHARED_MEMORY}/"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry.name}/maps") as maps:
            for line in maps:
                if folder in line:  # address, perms, offset, device, inode, path
                    held.add(int(line.split(maxsplit=5)[4]))
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path).startswith(folder):
                        held.add(os.stat(fd.path).st_ino)
    return {by_inode[inode] for inode in held if inode in by_inode}


def release_orphans(candidates: set[str]) -> list[str]:
    """Unlink those of ``candidates`` that are ours and that no live process holds; return their names.

    A segment of a process still running is mapped by it, so it is never taken. Only our
    own user's are candidates: the child runs as us, and another user's processes may not
    show us what they map (``/proc/PID/maps`` is theirs to read).
    """
    owner = os.geteuid()
    orphaned = sorted(name for name in (candidates & segments()) - held_by_anyone() if _owner(name) == owner)
    released = []
    for name in orphaned:
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to unlink after all
            (SHARED_MEMORY / name).unlink()
            released.append(name)
    return released


def _owner(name: str) -> int | None:
    """The user id owning segment ``name``; None once it is gone."""
    try:
        return (SHARED_MEMORY / name).stat().st_uid
    except OSError:
        return None
