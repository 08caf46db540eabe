"""Start the gateway as users do (``asr-gateway serve``) in a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


@contextmanager
def live_server(
    log_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    command: list[str] | None = None,
    health_path: str = "/healthcheck",
    timeout: float = 60,
    base_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[LiveServer]:
    """Run the server on a free loopback port until the block ends.

    Its environment is ``base_env`` (this process's when None), the loopback port, then ``env``.
    """
    port = free_port()
    inherited = os.environ if base_env is None else base_env
    full_env = {**inherited, "HF_HUB_OFFLINE": "1", "HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": "0"}
    full_env.update(env or {})
    argv = command or [str(Path(sys.executable).with_name("asr-gateway")), "serve"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, env=full_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()}")
            try:
                with urllib.request.urlopen(server.base_url + health_path, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not become healthy in {timeout} s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
