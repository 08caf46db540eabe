"""Managed mode's edge cases that a real vLLM cannot be brought to on demand, with a stand-in child.

The child is a stand-in interpreter run in place of ``python -m vllm...``: one that makes
shared memory and a semaphore as vLLM's engine does while it starts, then SIGKILLs its own
process group (the OOM killer during loading); or one that just sleeps, to be stopped
(SIGSTOP) or to stand for a server whose ``/health`` is slow while requests still complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.vllm import managed as managed_module
from gateway.backends.vllm import shm
from gateway.backends.vllm.managed import SOCKETS_PREFIX, ManagedConfig, ManagedVllm, free_port

DIES_WHILE_STARTING = """
import multiprocessing, os, signal, sys
from multiprocessing import shared_memory
segment = shared_memory.SharedMemory(create=True, size=4096)
lock = multiprocessing.get_context("spawn").Lock()
with open(sys.argv[1], "w") as names:
    names.write(segment.name.lstrip("/") + "\\n" + "sem." + lock._semlock.name.lstrip("/") + "\\n")
os.killpg(0, signal.SIGKILL)
"""

# As vLLM's processes do: a ZeroMQ-style IPC socket in VLLM_RPC_BASE_PATH, never removed; then killed.
LEAVES_A_SOCKET = """
import os, signal, socket, sys
path = os.path.join(os.environ["VLLM_RPC_BASE_PATH"], "0a1b2c3d-ipc")
socket.socket(socket.AF_UNIX).bind(path)
with open(sys.argv[1], "w") as out:
    out.write(path)
os.killpg(0, signal.SIGKILL)
"""

# It fails to start, leaving a socket, a shared-memory segment nobody holds, and an engine process that
# takes its time over SIGTERM: the gateway is still stopping that group when it shuts down.
FAILS_LEAVING_A_SLOW_ENGINE = """
import os, signal, socket, subprocess, sys, uuid
path = os.path.join(os.environ["VLLM_RPC_BASE_PATH"], "0a1b2c3d-ipc")
socket.socket(socket.AF_UNIX).bind(path)
segment = "psm_" + uuid.uuid4().hex[:8]
open("/dev/shm/" + segment, "wb").close()
engine = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
subprocess.Popen([sys.executable, "-c", engine])
with open(sys.argv[1], "w") as out:
    out.write(path + "\\n" + segment)
sys.exit(1)
"""


def stand_in(tmp_path: Path, arguments: str) -> Path:
    """A ``python`` run as ``python -m vllm...`` that ignores those arguments and runs ``arguments``."""
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\nexec {sys.executable} {arguments}\n")
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IXUSR)
    return fake_python


def supervisor(
    fake_python: Path, *, healthy: bool, last_answer: Callable[[], float] = time.monotonic, **config: Any
) -> ManagedVllm:
    """The gateway's supervisor over the stand-in: ``healthy`` is what its /health polls say."""

    async def is_healthy() -> bool:
        return healthy

    return ManagedVllm(
        ManagedConfig(python=str(fake_python), model="m", served_model_name="m", **{"port": free_port(), **config}),
        is_healthy=is_healthy,
        on_ready=lambda ready: None,
        last_answer=last_answer,
    )


async def until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def failed_child(tmp_path: Path, program: str, **config: Any) -> AsyncIterator[str]:
    """A supervisor over a stand-in child running ``program`` (which writes to the file named in argv[1] and
    never serves), started; it yields once the child has failed, with what the child wrote, and is stopped after.
    """
    written = tmp_path / "written"
    script = tmp_path / "child.py"
    script.write_text(program)
    managed = supervisor(stand_in(tmp_path, f"{script} {written}"), healthy=False, **config)
    await managed.start()
    try:
        await until(lambda: managed.failed and written.exists(), 10)
        yield written.read_text()
    finally:
        await managed.stop()


async def test_a_child_killed_while_starting_leaves_no_shared_memory(tmp_path: Path) -> None:
    async with failed_child(tmp_path, DIES_WHILE_STARTING) as names:
        made = set(names.split())
        assert sorted(name[:4] for name in made) == ["psm_", "sem."]
        # released once the supervisor has seen the group gone
        await until(lambda: not made & shm.segments(), 5)


async def test_a_childs_ipc_sockets_go_with_it(tmp_path: Path) -> None:
    """vLLM never removes its IPC sockets: the child makes them in a folder of its own, removed once it is gone."""
    async with failed_child(tmp_path, LEAVES_A_SOCKET) as socket_path:
        folder = Path(socket_path).parent
        assert folder.parent == Path(tempfile.gettempdir())
        assert folder.name.startswith(SOCKETS_PREFIX)
        await until(lambda: not folder.exists(), 5)


async def test_a_dead_childs_leftovers_go_when_shutdown_interrupts_its_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown cancels the supervisor mid-clean-up: its sockets and shared memory go all the same."""
    monkeypatch.setattr(managed_module, "STOP_GRACE", 1.0)
    async with failed_child(tmp_path, FAILS_LEAVING_A_SLOW_ENGINE) as written:
        await asyncio.sleep(0.2)  # the supervisor now waits for the engine process to go
    socket_path, segment = written.split()
    assert not Path(socket_path).parent.exists()
    assert segment not in shm.segments()


async def test_an_operators_own_socket_folder_stands(tmp_path: Path) -> None:
    own = tmp_path / "rpc"
    own.mkdir()
    environment = {**os.environ, "VLLM_RPC_BASE_PATH": str(own)}
    async with failed_child(tmp_path, LEAVES_A_SOCKET, env=environment) as socket_path:
        assert Path(socket_path).parent == own


async def test_a_child_is_taken_for_hung_only_when_nothing_answers(tmp_path: Path) -> None:
    """A child that still answers (requests, or the pool's probes) runs on; once nothing answers, it is restarted."""
    answered = {"at": 0.0}
    managed = supervisor(
        stand_in(tmp_path, "-c 'import time; time.sleep(600)'"),
        healthy=True,
        last_answer=lambda: answered["at"],
        hang_timeout=1.0,
        health_interval=0.05,
    )
    await managed.start()
    try:
        await until(lambda: managed.ready, 5)
        first = managed.pid
        assert first is not None
        for _ in range(60):  # 3 s, three hang timeouts, while it answers
            answered["at"] = time.monotonic()
            await asyncio.sleep(0.05)
        assert (managed.starts, managed.pid) == (1, first), "a child that answers was restarted"
        await until(lambda: managed.starts == 2, 5)  # nothing answers any more
        with pytest.raises(ProcessLookupError):
            os.killpg(first, 0)
    finally:
        await managed.stop()


async def test_a_stopped_child_is_stopped_at_shutdown_without_waiting_for_sigkill(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A child stopped (SIGSTOP) when the gateway shuts down acts on its SIGTERM at once."""
    managed = supervisor(stand_in(tmp_path, "-c 'import time; time.sleep(600)'"), healthy=True)
    await managed.start()
    await until(lambda: managed.ready, 5)
    pid = managed.pid
    assert pid is not None
    os.killpg(pid, signal.SIGSTOP)
    with caplog.at_level(logging.WARNING, logger="gateway.backends.vllm.managed"):
        await managed.stop()
    assert "did not stop in time" not in caplog.text
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def test_supervision_outlives_an_unexpected_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A start that fails in the gateway's own code (here /dev/shm unreadable once) is logged and tried again."""
    real_segments = shm.segments
    calls = {"n": 0}

    def unreadable_once() -> set[str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise PermissionError(13, "Permission denied", "/dev/shm")
        return real_segments()

    monkeypatch.setattr(managed_module.shm, "segments", unreadable_once)
    managed = supervisor(stand_in(tmp_path, "-c 'import time; time.sleep(600)'"), healthy=True)
    with caplog.at_level(logging.ERROR, logger="gateway.backends.vllm.managed"):
        await managed.start()
        try:
            await until(lambda: managed.ready, 10)
            assert managed.starts == 2
            assert "supervising the managed vLLM failed" in caplog.text
        finally:
            await managed.stop()
    assert not managed.ready


async def test_a_port_already_served_is_a_failed_start_not_a_ready_child(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server left on the managed port (an earlier gateway's vLLM) must not pass for the child."""
    server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = tmp_path / "started"
    managed = supervisor(stand_in(tmp_path, f'-c \'open("{started}", "w")\''), healthy=True, port=port)
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.backends.vllm.managed"):
            await managed.start()
            await until(lambda: managed.failed, 5)
        assert not managed.ready
        assert f"port {port} on 127.0.0.1 is already in use" in caplog.text
        assert not started.exists(), "the child was run"
    finally:
        await managed.stop()
        server.close()
        await server.wait_closed()


def test_another_users_segment_is_never_released() -> None:
    """Only our own user's segments are released: another's may be live in a process we cannot inspect."""
    if os.geteuid() != 0:
        reason = "giving a segment to another user needs root (CI runs as root)"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    segment = shm.SHARED_MEMORY / f"psm_test_{os.getpid()}"
    segment.write_bytes(b"")
    try:
        os.chown(segment, 12345, 12345)
        assert shm.release_orphans({segment.name}) == []
        assert segment.exists()
        os.chown(segment, os.geteuid(), os.getegid())
        assert shm.release_orphans({segment.name}) == [segment.name]
        assert not segment.exists()
    finally:
        segment.unlink(missing_ok=True)
