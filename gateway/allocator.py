"""glibc's allocator, set once at start-up: one arena shared by every thread.

glibc gives each thread that allocates under contention its own arena, and an arena
keeps what it freed for that thread. The embedded engine's workers each allocate the
beam search's buffers (tens of MB a step), so every worker's arena held its own peak:
on a 30-minute file, peak RSS 0.85 GiB with an arena per thread against 0.64 GiB with
one, at the same speed (docs/benchmarks.md). A ``MALLOC_ARENA_MAX`` in the
environment is glibc's own setting and is left to win.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_ARENA_MAX = -8  # from glibc's malloc.h


def share_one_arena() -> bool:
    """Ask glibc for one arena; False where the C library is not glibc or the user chose."""
    if "MALLOC_ARENA_MAX" in os.environ:  # noqa: TID251 - glibc's own variable, not a gateway setting
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):
        return False  # musl and others: their allocators have no arenas to share
    return bool(mallopt(_M_ARENA_MAX, 1))
