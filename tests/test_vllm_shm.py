"""Releasing the shared memory a killed vLLM leaves: only segments no live process holds."""

from __future__ import annotations

import os
from multiprocessing import resource_tracker, shared_memory

from gateway.backends.vllm import shm


def test_a_held_segment_is_kept_and_an_orphan_released() -> None:
    segment = shared_memory.SharedMemory(create=True, size=4096)
    name = segment.name.lstrip("/")
    try:
        assert name in shm.segments()
        assert name in shm.held_by_group(os.getpgrp())
        assert shm.release_orphans({name}) == []  # this process maps it
        assert name in shm.segments()
        segment.close()  # unmapped and closed, still in /dev/shm: what SIGKILL leaves
        assert name not in shm.held_by_anyone()
        assert shm.release_orphans({name, "psm_not_there"}) == [name]
        assert name not in shm.segments()
    finally:
        segment.close()
        if name in shm.segments():
            segment.unlink()
        else:  # released above: the tracker must not unlink it again at exit
            resource_tracker.unregister(segment._name, "shared_memory")  # type: ignore[attr-defined]
