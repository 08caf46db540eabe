"""Managed mode: the gateway runs vLLM itself, restarts it when it dies or hangs, and stops it on shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.backends.factory import build_backend
from gateway.backends.vllm import VllmBackend, shm
from gateway.backends.vllm.managed import SOCKETS_PREFIX
from gateway.settings import from_env
from tests.corpus import clip
from tests.server import live_server
from tests.vllm_support.vllm_env import SERVER_ENV

pytestmark = pytest.mark.vllm

CPU_ARGS = "--dtype float32 --enforce-eager --max-model-len 2048"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def codes(self) -> list[str]:
        return [str(getattr(r, "error_code", "")) for r in self.records]


@pytest.fixture
def backend_logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("gateway.backends.vllm")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def cpu_vllm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What vLLM's CPU build needs here; the gateway passes its environment on to the child."""
    for name, value in SERVER_ENV.items():
        monkeypatch.setenv(name, value)


HANG_SECONDS = 8  # the test's VLLM_HANG_SECONDS (default 60)


def managed(vllm_python: Path, model: str) -> tuple[VllmBackend, AsyncTestClient[Litestar]]:
    settings = from_env(
        {
            "VLLM_HANG_SECONDS": str(HANG_SECONDS),
            "BACKEND": "vllm",
            "VLLM_MODEL": model,
            "VLLM_PYTHON": str(vllm_python),
            "VLLM_SERVED_MODEL_NAME": "tiny-managed",
            "VLLM_EXTRA_ARGS": CPU_ARGS,
            "METRICS_PORT": "0",
        }
    )
    backend = build_backend(settings)
    assert isinstance(backend, VllmBackend)
    return backend, AsyncTestClient(app=create_app(settings, backend=backend), timeout=120)


async def wait_for(client: AsyncTestClient[Litestar], status: int, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if (await client.get("/healthcheck")).status_code == status:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"/healthcheck did not turn {status} within {seconds} s")


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def group_running(group: int) -> bool:
    """Whether a process of the group runs: zombies do not count (an orphan's reaper may be slow, or none)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def ipc_folders() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(SOCKETS_PREFIX + "*"))


def ipc_folder(pid: int) -> Path:
    """Where the child's vLLM makes its IPC sockets (``VLLM_RPC_BASE_PATH`` in its environment)."""
    environment = dict(
        entry.split(b"=", 1) for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in entry
    )
    folder = Path(environment[b"VLLM_RPC_BASE_PATH"].decode())
    assert folder.name.startswith(SOCKETS_PREFIX)
    assert folder.parent == Path(tempfile.gettempdir())
    return folder


def private_media_dirs() -> list[Path]:
    return list(shm.SHARED_MEMORY.glob("asr-gateway-media-*"))


async def test_managed_vllm_starts_serves_restarts_and_stops(
    vllm_python: Path, tiny_model: Path, cpu_vllm_environment: None, backend_logs: Records
) -> None:
    backend, client = managed(vllm_python, str(tiny_model))
    audio = clip("ss_0870").path.read_bytes()

    async def transcribed() -> None:
        response = await client.post("/v1/asr/transcribe/audio", files={"file": ("a.wav", audio, "audio/wav")})
        assert response.status_code == 200, response.text

    async def restarted(previous: int, starts: int) -> int:
        """Once /healthcheck has failed: a new child serves, and requests succeed. Its pid."""
        await wait_for(client, 500, 30)
        seconds = await wait_for(client, 200, 240)
        print(f"managed vLLM: restarted, /healthcheck 200 again after {seconds:.1f} s")
        assert backend.managed is not None
        pid = backend.managed.pid
        assert pid is not None
        assert pid != previous
        assert backend.managed.starts == starts
        await transcribed()
        return pid

    before = shm.segments()  # the session's vLLM server's, and anything else already there
    async with client:
        # The gateway answers at once; the backend is not ready yet.
        assert (await client.get("/healthcheck")).status_code == 500
        starting = await client.post("/v1/asr/transcribe/audio", files={"file": ("a.wav", audio, "audio/wav")})
        assert (starting.status_code, starting.json()["code"]) == (503, "ASR-6003")

        seconds = await wait_for(client, 200, 240)
        print(f"\nmanaged vLLM: /healthcheck 200 after {seconds:.1f} s")
        models = (await client.get("/v1/models")).json()
        assert models["data"][0]["id"] == "tiny-managed"
        response = await client.post("/v1/asr/transcribe/audio", files={"file": ("a.wav", audio, "audio/wav")})
        assert response.status_code == 200, response.text
        assert (response.json()["text"], response.json()["language"]) == ("hello world", "en")
        assert backend.managed is not None
        first = backend.managed.pid
        assert first is not None
        assert b"--allowed-local-media-path\0/dev/shm/asr-gateway-media-" in command_line(first)
        assert group_alive(first)
        sockets = ipc_folder(first)
        assert any(sockets.iterdir()), "vLLM made no IPC socket in its own folder"

        # It dies: the gateway says so, starts it again, and serves again.
        held = shm.segments() - before  # the child's
        assert held, "vLLM holds no shared memory: nothing to check below"
        os.killpg(first, signal.SIGKILL)
        second = await restarted(first, starts=2)
        assert not held & shm.segments(), "the killed child's shared memory is still in /dev/shm"
        assert not sockets.exists(), "the killed child's IPC sockets are still there"

        # It hangs (stopped: its process runs, nothing answers): killed after VLLM_HANG_SECONDS, started again.
        os.killpg(second, signal.SIGSTOP)
        hung = time.monotonic()
        third = await restarted(second, starts=3)
        assert not group_alive(second), "the hung child's processes are still there"
        assert time.monotonic() - hung > HANG_SECONDS, "restarted before VLLM_HANG_SECONDS"
        assert any("stopped answering" in r.getMessage() for r in backend_logs.records)
    # Shutdown stopped the child and every process of its group.
    assert not group_alive(third)
    assert processes_mentioning("tiny-managed") == []
    assert "ASR-6010" not in backend_logs.codes()
    # the child was handed files in a directory of the gateway's own, gone with it
    assert private_media_dirs() == []
    assert not ipc_folders(), "a child's IPC sockets outlived the gateway"


async def test_managed_vllm_that_cannot_start(
    vllm_python: Path, cpu_vllm_environment: None, backend_logs: Records, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    _, client = managed(vllm_python, str(missing))
    async with client:
        assert (await client.get("/healthcheck")).status_code == 500
        for _ in range(240):
            if "ASR-6010" in backend_logs.codes():
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("no ASR-6010 in the logs")
        failure = next(r for r in backend_logs.records if getattr(r, "error_code", "") == "ASR-6010")
        assert str(missing) in str(getattr(failure, "output", "")), "the log carries vLLM's own last lines"
        # The gateway still serves, and says the backend is not there.
        health = await client.get("/healthcheck")
        assert (health.status_code, health.json()) == (500, {"detail": "service is not available"})
        audio = clip("ss_0870").path.read_bytes()
        response = await client.post("/v1/asr/transcribe/audio", files={"file": ("a.wav", audio, "audio/wav")})
        assert (response.status_code, response.json()["code"]) == (503, "ASR-6003")
        assert "failed to start" in response.json()["error"]
    assert processes_mentioning(str(missing)) == []


def test_managed_vllm_goes_with_a_gateway_killed_outright(vllm_python: Path, tiny_model: Path, tmp_path: Path) -> None:
    """SIGKILL (the OOM killer, ``kill -9``) leaves the gateway no time to stop its child: the child stops itself.

    An orphaned vLLM would keep the accelerator's memory and its port, and the next gateway's
    child could not start (ASR-6010) until someone found and killed it by hand.
    """
    name = "tiny-orphan-check"
    env = {
        **SERVER_ENV,
        "BACKEND": "vllm",
        "VLLM_MODEL": str(tiny_model),
        "VLLM_PYTHON": str(vllm_python),
        "VLLM_SERVED_MODEL_NAME": name,
        "VLLM_EXTRA_ARGS": CPU_ARGS,
    }
    with live_server(tmp_path / "gateway.log", env, timeout=300) as gateway:  # healthy once its vLLM serves
        [child] = [pid for pid in processes_mentioning(name) if os.getpgid(pid) == pid]
        arguments = command_line(child).split(b"\0")
        # what the killed gateway leaves, for the next one to remove (tests/test_vllm_media_sweep.py): not here
        left = [Path(arguments[arguments.index(b"--allowed-local-media-path") + 1].decode()), ipc_folder(child)]
        gateway.process.kill()
        gateway.process.wait()
        killed = time.monotonic()
        while group_running(child) and time.monotonic() - killed < 60:
            time.sleep(0.25)
        alive = group_running(child)
        if alive:
            os.killpg(child, signal.SIGKILL)  # not left to the next tests
        assert not alive, f"the managed vLLM outlived its gateway by 60 s:\n{gateway.log()}"
        print(f"\nmanaged vLLM: every process gone {time.monotonic() - killed:.1f} s after its gateway was killed")
    assert processes_mentioning(name) == []  # a zombie's command line is empty
    for folder in left:
        shutil.rmtree(folder)
