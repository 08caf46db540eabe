"""A vLLM server the gateway runs itself: started, watched, restarted, stopped.

Watched twice: a child that exits is started again, and so is one whose process
runs but that has answered neither ``/health`` nor a request for ``hang_timeout``
seconds after it served (deadlocked, stopped, swapping): it is killed outright, since
a process that does not answer would not drain either.

The child runs in its own session, so that vLLM's engine processes share its
process group and one signal stops them all; it stops itself when the gateway is
killed outright (``orphan_guard``). Its output is logged (INFO while it
starts, DEBUG once it serves) and its last lines go into the ASR-6010 log event
when it fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from compat.errors import BackendStartFailed
from gateway.backends.vllm import leftovers, shm
from gateway.backends.vllm.orphan_guard import guarded

log = logging.getLogger(__name__)

READY_POLL = 0.5
STOP_GRACE = 20.0  # vLLM drains and frees the accelerator on SIGTERM; then SIGKILL
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0
STABLE_AFTER = 120.0  # a child that served this long resets the backoff
TAIL_LINES = 40
SOCKETS_PREFIX = "asr-gateway-vllm-ipc-"  # a child's own folder for vLLM's IPC sockets, in the temp directory


@dataclass(frozen=True)
class ManagedConfig:
    """How the child vLLM is run.

    Attributes:
        python: interpreter of an environment where vLLM is installed.
        model: what ``--model`` loads (a Hugging Face id or a directory).
        served_model_name: the id clients and the gateway use for it.
        port: port on 127.0.0.1 (nonzero).
        extra_args: appended to the command line (later flags win in vLLM).
        api_key: passed as ``--api-key`` when set.
        startup_timeout: longest wait for ``/health`` after a start.
        hang_timeout: longest a child that served may answer nothing before it is killed; 0: never.
        health_interval: seconds between the checks of a serving child.
        env: the child's environment.
        media_dir: passed as ``--allowed-local-media-path`` when set (pieces come as files there).
    """

    python: str
    model: str
    served_model_name: str
    port: int
    extra_args: tuple[str, ...] = ()
    api_key: str = ""
    startup_timeout: float = 900.0
    hang_timeout: float = 60.0
    health_interval: float = 2.0
    env: Mapping[str, str] | None = None
    media_dir: str = ""

    @property
    def base_url(self) -> str:
        """The child's OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The command line of the child."""
        command = [
            self.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--served-model-name",
            self.served_model_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.api_key:
            command += ["--api-key", self.api_key]
        if self.media_dir:
            command += ["--allowed-local-media-path", self.media_dir]
        return command + list(self.extra_args)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sockets_folder() -> tuple[Path, int]:
    """A fresh folder for a child's IPC sockets, and its lock, held while the child runs.

    The folders killed gateways left (their lock free) are removed first: a child stops
    with its gateway (``orphan_guard``), but its sockets stay where it made them.
    """
    leftovers.remove_abandoned(Path(tempfile.gettempdir()).glob(SOCKETS_PREFIX + "*"))
    folder = Path(tempfile.mkdtemp(prefix=SOCKETS_PREFIX))
    return folder, leftovers.hold(folder)


class ManagedVllm:
    """Supervises one vLLM child process: starts it, restarts it when it dies, stops it.

    Args:
        config: how to run it.
        is_healthy: whether the child answers ``/health`` now (polled while it starts).
        on_ready: called with True once it serves, with False when it stops serving.
        last_answer: when the child last answered a ``/health`` probe or a request
            (``time.monotonic()``): a child that completes requests is not hung, even if its
            ``/health`` is slow.

    Attributes:
        ready: whether the child serves now.
        failed: whether its last start failed (ASR-6010 logged); cleared once one serves.
        starts: how many times it was started.
    """

    def __init__(
        self,
        config: ManagedConfig,
        *,
        is_healthy: Callable[[], Awaitable[bool]],
        on_ready: Callable[[bool], None],
        last_answer: Callable[[], float],
    ) -> None:
        self.config = config
        self._is_healthy = is_healthy
        self._on_ready = on_ready
        self._last_answer = last_answer
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._serving = False
        self._unreleased: set[str] | None = None  # the segments before a child whose shared memory is not yet released
        self.ready = False
        self.failed = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The child's process id (also its process group's), while one runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start supervising in the background; return at once (``ready`` turns True later)."""
        self._supervisor = asyncio.create_task(self._supervise(), name="vllm-supervisor")

    async def stop(self) -> None:
        """Stop supervising, stop the child's whole process group, and release what it left."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        try:
            if self._process is not None:
                await _stop_group(self._process)
            if self._unreleased is not None:  # shutdown came while a dead child's clean-up was under way
                await self._release_shared_memory(self._unreleased)
                self._unreleased = None
        finally:
            self._set_ready(False)

    async def _supervise(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            started = time.monotonic()
            try:
                ready = await self._run_once()
            except Exception:  # a supervisor that died would never restart the child: log, and start it again
                log.exception("supervising the managed vLLM failed", extra={"error_code": "ASR-6003"})
                ready = False
            if ready and time.monotonic() - started > STABLE_AFTER:
                backoff = FIRST_BACKOFF
            log.info("restarting the managed vLLM", extra={"in_seconds": backoff})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _run_once(self) -> bool:
        """Start the child, wait for it to serve, then until it exits; whether it ever served."""
        self._tail.clear()
        self._serving = False
        self.starts += 1
        command = self.config.command()
        log.info("starting the managed vLLM", extra={"command": _redacted(command, self.config.api_key)})
        before = await asyncio.to_thread(shm.segments)  # what appears after this is the child's
        sockets, held = await asyncio.to_thread(sockets_folder)
        try:
            return await self._run_child(command, before, self._environment(str(sockets)))
        finally:
            # However the run ended, even with shutdown cutting its clean-up short: a few files, on the loop.
            shutil.rmtree(sockets, ignore_errors=True)
            os.close(held)

    async def _run_child(self, command: list[str], before: set[str], environment: dict[str, str]) -> bool:
        """``_run_once`` with the child's environment made (``before``: the segments already there)."""
        started = time.monotonic()
        if await _answers(self.config.port):  # else that server's /health would pass for our child's
            self._start_failed(
                f"port {self.config.port} on 127.0.0.1 is already in use (a vLLM left from an earlier gateway?)", None
            )
            return False
        try:
            process = await asyncio.create_subprocess_exec(
                *guarded(command),  # stopped even when the gateway is killed outright
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=environment,
                start_new_session=True,
                limit=1 << 20,
            )
        except OSError as error:
            self._start_failed(f"cannot run {command[0]}: {error}", None)
            return False
        self._process = process
        self._unreleased = before
        reader = asyncio.create_task(self._read_output(process), name="vllm-output")
        try:
            if not await self._wait_ready(process, started):
                return False
            self._serving = True
            self.failed = False
            self._set_ready(True)
            log.info(
                "managed vLLM serving",
                extra={"pid": process.pid, "startup_seconds": round(time.monotonic() - started, 1)},
            )
            code = await self._serve_until_gone(process)
            self._set_ready(False)
            if code is None:
                log.error(
                    "managed vLLM stopped answering: killed, to be started again",
                    extra={
                        "pid": process.pid,
                        "seconds": self.config.hang_timeout,
                        "error_code": "ASR-6003",
                        "output": self._tail_text(),
                    },
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return True
            log.error(
                "managed vLLM exited",
                extra={"pid": process.pid, "exit_code": code, "error_code": "ASR-6003", "output": self._tail_text()},
            )
            return True
        finally:
            self._set_ready(False)
            await _stop_group(process)  # the engine processes may outlive the API server
            await asyncio.gather(reader, return_exceptions=True)
            await self._release_shared_memory(before)
            self._unreleased = None  # done here; else stop() does it

    def _environment(self, sockets: str) -> dict[str, str]:
        """The child's environment, its IPC sockets in ``sockets``.

        vLLM's processes talk over ZeroMQ sockets that it makes in the temp directory
        (``VLLM_RPC_BASE_PATH``) and leaves there when its group is stopped or killed: every
        start would leave a handful in ``/tmp``. In a folder of the child's own, they go when
        it does. An operator's own ``VLLM_RPC_BASE_PATH`` stands.
        """
        environment = dict(self.config.env) if self.config.env is not None else child_environment()
        environment.setdefault("VLLM_RPC_BASE_PATH", sockets)
        return environment

    async def _serve_until_gone(self, process: asyncio.subprocess.Process) -> int | None:
        """Until the child exits (its status), or has answered nothing for ``hang_timeout`` s (None)."""
        if not self.config.hang_timeout:
            return await process.wait()
        serving = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.health_interval):
                    return await process.wait()
            if time.monotonic() - max(serving, self._last_answer()) > self.config.hang_timeout:
                return None

    async def _release_shared_memory(self, before: set[str]) -> None:
        """Unlink the segments a killed child could not, serving or still starting (a clean exit leaves none).

        Those that appeared while it ran and that no live process holds: a process maps a
        segment from the moment its name exists, so another program's are never taken.
        """
        try:
            released = await asyncio.to_thread(lambda: shm.release_orphans(shm.segments() - before))
        except OSError as error:  # /dev/shm unreadable: nothing to release, and no reason to stop supervising
            log.warning("could not release the managed vLLM's shared memory", extra={"error": str(error)})
            return
        if released:
            log.info("released the shared memory the managed vLLM left", extra={"segments": released})

    async def _wait_ready(self, process: asyncio.subprocess.Process, started: float) -> bool:
        deadline = started + self.config.startup_timeout
        while True:
            if process.returncode is not None:
                await asyncio.sleep(0.2)  # let the reader catch the last lines
                self._start_failed(f"vLLM exited with status {process.returncode} before serving", process.returncode)
                return False
            if await self._is_healthy():
                return True
            if time.monotonic() > deadline:
                self._start_failed(f"vLLM did not answer /health within {self.config.startup_timeout:g} s", None)
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(READY_POLL):
                    await process.wait()

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line over the limit: skip it
                continue
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            self._tail.append(line)
            log.log(logging.DEBUG if self._serving else logging.INFO, line, extra={"source": "vllm"})

    def _start_failed(self, why: str, exit_code: int | None) -> None:
        self.failed = True
        error = BackendStartFailed(f"The managed vLLM did not start: {why}.")
        log.error(
            error.message,
            extra={
                "error_code": error.code,
                "exit_code": exit_code,
                "model": self.config.model,
                "output": self._tail_text(),
            },
        )

    def _set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            self._on_ready(ready)

    def _tail_text(self) -> str:
        return "\n".join(self._tail)


async def _stop_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the child's process group, SIGKILL after a grace period; wait until the group is gone."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
        os.killpg(group, signal.SIGCONT)  # a stopped group acts on SIGTERM only once continued
    try:
        async with asyncio.timeout(STOP_GRACE):
            await process.wait()
            await _group_gone(group)
    except TimeoutError:
        log.warning("managed vLLM did not stop in time: killing it", extra={"pid": group})
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        await process.wait()


async def _group_gone(group: int) -> None:
    """Until no process of the group is left (vLLM's engine processes exit after the API server)."""
    while True:
        if not _group_alive(group):
            return
        await asyncio.sleep(0.1)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        async with asyncio.timeout(2.0):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _redacted(command: list[str], secret: str) -> list[str]:
    return [("***" if secret and part == secret else part) for part in command]


def child_environment(*, drop: Iterable[str] = ()) -> dict[str, str]:
    """The gateway's environment for the child, without the names in ``drop``."""
    dropped = set(drop)
    # Passed through to the child, not read as settings.
    return {key: value for key, value in os.environ.items() if key not in dropped}  # noqa: TID251
