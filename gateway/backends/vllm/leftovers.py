"""Folders a gateway holds while it uses them, and removes when a killed gateway left them.

A process killed outright (SIGKILL, the OOM killer) cannot remove what it made. Each such
folder is locked (``flock``) by its gateway while it lives, so the next gateway to start
removes every one whose lock is free. A lock, not a PID: gateways in other containers
sharing the directory have PIDs this one cannot see, but the same locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

GRACE_SECONDS = 60.0  # a folder this new may belong to a gateway still starting (not yet locked)


def hold(folder: Path) -> int:
    """Lock ``folder`` for as long as this process lives or keeps the descriptor returned open.

    Raises:
        OSError: the folder cannot be opened.
    """
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(descriptor, fcntl.LOCK_EX)  # a fresh folder: nobody else holds it
    return descriptor


def settled(path: Path) -> bool:
    """A directory not changed for the grace period (one being set up is left alone)."""
    try:
        return path.is_dir() and time.time() - path.stat().st_mtime > GRACE_SECONDS
    except OSError:
        return False


def abandoned(folder: Path) -> bool:
    """Whether a held folder's gateway is gone: it is settled and nobody holds its lock."""
    if not settled(folder):
        return False
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False  # not ours to judge (another user's folder)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its gateway is alive
    finally:
        os.close(descriptor)
    return True


def remove_abandoned(folders: Iterable[Path]) -> None:
    """Remove those of ``folders`` whose gateway is gone."""
    for folder in folders:
        if abandoned(folder):
            remove(folder)


def remove(path: Path) -> None:
    """Remove what a killed gateway left (gone already, or not ours: left as it is)."""
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
        log.info("removed what a killed gateway left", extra={"path": str(path)})
