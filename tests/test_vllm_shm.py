"""Releasing the shared memory a killed vLLM leaves: only segments and semaphores no live process holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from multiprocessing import resource_tracker, shared_memory

from gateway.backends.vllm import shm


def test_a_held_segment_is_kept_and_an_orphan_released() -> None:
    segment = shared_memory.SharedMemory(create=True, size=4096)
    name = segment.name.lstrip("/")
    try:
        assert name in shm.segments()
        assert name in shm.held_by_anyone()  # this process maps it
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


def test_the_semaphores_of_a_killed_process_group_are_released() -> None:
    """As vLLM's engine locks: multiprocessing's named semaphores, left when its group is SIGKILLed."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import multiprocessing, sys, time\n"
            "lock = multiprocessing.get_context('spawn').Lock()\n"
            "print(lock._semlock.name.lstrip('/'), flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        name = "sem." + child.stdout.readline().strip()
        assert name.startswith("sem.mp-")
        assert name in shm.segments()
        # glibc maps it under a temporary name it renamed: found by inode all the same
        assert name in shm.held_by_anyone()
        assert shm.release_orphans({name}) == []
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # its resource tracker too: nothing unlinks the name
        child.wait(10)
    assert name in shm.segments()
    assert name not in shm.held_by_anyone()
    assert shm.release_orphans({name}) == [name]
    assert name not in shm.segments()
