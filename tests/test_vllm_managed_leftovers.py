"""A managed vLLM killed before it serves leaves no shared memory behind; a stopped one still stops.

vLLM's engine makes its shared memory and semaphores while it starts, so a child
killed then (the OOM killer during loading) leaves them too. The real server cannot
be killed at that moment on demand, so the child here is a stand-in interpreter
that makes one segment and one semaphore as vLLM does, then SIGKILLs its own
process group (its resource tracker with it) without serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from gateway.backends.vllm import shm
from gateway.backends.vllm.managed import ManagedConfig, ManagedVllm, free_port

DIES_WHILE_STARTING = """
import multiprocessing, os, signal, sys
from multiprocessing import shared_memory
segment = shared_memory.SharedMemory(create=True, size=4096)
lock = multiprocessing.get_context("spawn").Lock()
with open(sys.argv[1], "w") as names:
    names.write(segment.name.lstrip("/") + "\\n" + "sem." + lock._semlock.name.lstrip("/") + "\\n")
os.killpg(0, signal.SIGKILL)
"""


async def test_a_child_killed_while_starting_leaves_no_shared_memory(tmp_path: Path) -> None:
    names = tmp_path / "names"
    program = tmp_path / "dies.py"
    program.write_text(DIES_WHILE_STARTING)
    fake_python = tmp_path / "python"  # run as `python -m vllm...`: the arguments are ignored
    fake_python.write_text(f"#!/bin/sh\nexec {sys.executable} {program} {names}\n")
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IXUSR)

    async def never_healthy() -> bool:
        return False

    managed = ManagedVllm(
        ManagedConfig(python=str(fake_python), model="m", served_model_name="m", port=free_port()),
        is_healthy=never_healthy,
        on_ready=lambda ready: None,
    )
    await managed.start()
    try:
        for _ in range(200):
            if managed.failed and names.exists():
                break
            await asyncio.sleep(0.05)
        assert managed.failed, "the stand-in did not die"
        made = set(names.read_text().split())
        assert sorted(name[:4] for name in made) == ["psm_", "sem."]
        for _ in range(100):  # released once the supervisor has seen the group gone
            if not made & shm.segments():
                break
            await asyncio.sleep(0.05)
        assert not made & shm.segments(), "the dead child's shared memory is still in /dev/shm"
    finally:
        await managed.stop()


async def test_a_stopped_child_is_stopped_at_shutdown_without_waiting_for_sigkill(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A child stopped (SIGSTOP) when the gateway shuts down acts on its SIGTERM at once."""
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import time; time.sleep(600)'\n")
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IXUSR)

    async def healthy() -> bool:
        return True

    managed = ManagedVllm(
        ManagedConfig(python=str(fake_python), model="m", served_model_name="m", port=free_port()),
        is_healthy=healthy,
        on_ready=lambda ready: None,
    )
    await managed.start()
    for _ in range(100):
        if managed.ready:
            break
        await asyncio.sleep(0.05)
    pid = managed.pid
    assert managed.ready
    assert pid is not None
    os.killpg(pid, signal.SIGSTOP)
    with caplog.at_level(logging.WARNING, logger="gateway.backends.vllm.managed"):
        await managed.stop()
    assert "did not stop in time" not in caplog.text
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
