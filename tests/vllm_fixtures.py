"""The vLLM tier's fixtures: one real vLLM (CPU) for the session, and the gateway pointed at it.

Registered from ``tests/conftest.py`` (``pytest_plugins``), so that the session's
server is started once however many modules use it. Outside CI a missing vLLM
environment skips the tier with a loud reason; in CI (``CI=true``) it is installed,
or the tier fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.settings import Settings, from_env
from tests.vllm_support import vllm_env
from tests.vllm_support.vllm_env import (
    build_tiny_checkpoint,
    ensure_vllm_env,
    free_port,
    start_vllm_server,
    stop_vllm_server,
    wait_healthy,
)

SERVED_NAME = "tiny-asr"
START_TIMEOUT = 240.0
API_KEY = "sk-test-vllm"  # the test servers' key: every gateway on them must pass it (VLLM_API_KEY)
INSTALL_HINT = (
    "python -c 'from tests.vllm_support.vllm_env import ensure_vllm_env; ensure_vllm_env()' "
    "(about 100 s and 2.7 GB; see tests/vllm_support/README.md), or run with CI=true to install it on the way"
)


@dataclass
class VllmServer:
    """A real vLLM server on 127.0.0.1 that a test may stop, kill and start again on the same port."""

    python: Path
    model: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    media_dir: Path | None = None  # given to vLLM as --allowed-local-media-path
    api_key: str = API_KEY  # given to vLLM as --api-key: its /v1 routes answer 401 without it
    process: subprocess.Popen[bytes] | None = None
    start_seconds: list[float] = field(default_factory=list)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it (same port each time) and wait for /health."""
        started = time.monotonic()
        extra = ("--api-key", self.api_key)
        extra += ("--allowed-local-media-path", str(self.media_dir)) if self.media_dir else ()
        self.process = start_vllm_server(
            self.python,
            self.model,
            port=self.port,
            served_model_name=SERVED_NAME,
            log_path=self.log_path,
            extra_args=extra,
        )
        try:
            wait_healthy(self.root, START_TIMEOUT, process=self.process, log_path=self.log_path)
        except Exception:
            stop_vllm_server(self.process)
            raise
        self.start_seconds.append(time.monotonic() - started)

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def stop(self) -> None:
        """SIGTERM to its process group, as an operator stops it."""
        if self.process is not None:
            stop_vllm_server(self.process)

    def kill(self) -> None:
        """SIGKILL to its whole process group at once: a crash."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def metrics(self) -> VllmMetrics:
        with urllib.request.urlopen(f"{self.root}/metrics", timeout=10) as response:
            return VllmMetrics.parse(response.read().decode())


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


@dataclass(frozen=True)
class VllmMetrics:
    """vLLM's Prometheus samples, summed over the labels a test does not name."""

    samples: tuple[tuple[str, dict[str, str], float], ...]

    @classmethod
    def parse(cls, text: str) -> VllmMetrics:
        out = []
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match is None or line.startswith("#"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels") or ""))
            out.append((match.group("name"), labels, float(match.group("value"))))
        return cls(tuple(out))

    def value(self, name: str, **labels: str) -> float:
        return sum(v for n, ls, v in self.samples if n == name and all(ls.get(k) == w for k, w in labels.items()))

    @property
    def finished_requests(self) -> float:
        """Requests vLLM answered to the end (any finish reason but abort/error)."""
        return self.value("vllm:request_success_total", finished_reason="stop") + self.value(
            "vllm:request_success_total", finished_reason="length"
        )

    @property
    def prompt_tokens(self) -> float:
        return self.value("vllm:prompt_tokens_total")

    @property
    def steps(self) -> float:
        """Engine steps (iterations) so far."""
        return self.value("vllm:iteration_tokens_total_count")

    @property
    def steps_with_2_to_8_tokens(self) -> float:
        """Decode steps that carried several requests at once (one token per running request)."""
        bucket = "vllm:iteration_tokens_total_bucket"
        return self.value(bucket, le="8.0") - self.value(bucket, le="1.0")

    @property
    def steps_over_512_tokens(self) -> float:
        """Prefill steps with more tokens than one 30 s piece has (402): several prompts together."""
        bucket = "vllm:iteration_tokens_total_bucket"
        return self.value(bucket, le="+Inf") - self.value(bucket, le="512.0")


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The vLLM environment's interpreter: installed in CI, else skip loudly when missing."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        return ensure_vllm_env()  # installs (about 100 s) or raises: CI never skips this tier
    if not vllm_env._is_complete(vllm_env.default_env_dir()):  # checked without installing
        pytest.skip(
            f"!!! vLLM TIER SKIPPED: no vLLM CPU environment at {vllm_env.default_env_dir()}. Install it with: "
            + INSTALL_HINT
        )
    return ensure_vllm_env()


@pytest.fixture(scope="session")
def tiny_model(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen3-ASR checkpoint: answers ``language English<asr_text>hello world`` to any audio."""
    return build_tiny_checkpoint(vllm_python, tmp_path_factory.mktemp("vllm") / "tiny-qwen3-asr")


def new_vllm_server(python: Path, model: Path, directory: Path) -> VllmServer:
    """A server object, not started; its log lies in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return VllmServer(python=python, model=model, log_path=directory / "vllm.log")


@pytest.fixture(scope="session")
def vllm_server(vllm_python: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """One real vLLM for the whole session (it may read files in its ``media_dir``)."""
    server = new_vllm_server(vllm_python, tiny_model, tmp_path_factory.mktemp("vllm-session"))
    server.media_dir = tmp_path_factory.mktemp("vllm-media")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def vllm_settings(*base_urls: str, **overrides: object) -> Settings:
    """Gateway settings for the vLLM backend at ``base_urls``, probing fast, /metrics on the API port."""
    return from_env(
        {},
        {
            "backend": "vllm",
            "vllm_base_urls": ",".join(base_urls),
            "vllm_api_key": API_KEY,
            "vllm_health_interval_seconds": 0.5,
            "metrics_port": 0,  # several apps share this process
            **overrides,
        },
    )


@pytest.fixture(scope="session")
def vllm_app(vllm_server: VllmServer) -> Litestar:
    return create_app(vllm_settings(vllm_server.base_url))


@pytest.fixture(scope="session")
async def vllm_client(vllm_app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The gateway on the session's vLLM, in-process; entering it runs the lifespan (backend.start)."""
    async with AsyncTestClient(app=vllm_app, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def vllm_sdk(vllm_client: AsyncTestClient[Litestar]) -> openai.AsyncOpenAI:
    """The official OpenAI SDK pointed at the gateway on vLLM."""
    return openai.AsyncOpenAI(
        base_url=f"{vllm_client.base_url}/v1", api_key="unused", http_client=vllm_client, max_retries=0
    )
