"""Fixtures chain: settings -> app (real embedded engine) -> test client -> the official OpenAI SDK.

The embedded engine is the real one (Whisper tiny.en on the CPU) and the speech is
real (``tests/data/speech``); fakes appear only where a fault must be injected.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.backends.vllm import shm
from gateway.settings import Settings, from_env
from tests.corpus import LongInput, build_long_input, write_wav

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded; the model is bundled


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: the defaults, /metrics on the API port (many apps share a process), and the changes."""
    return from_env({}, {"metrics_port": 0, **overrides})


@pytest.fixture(scope="session", autouse=True)
def no_leaked_shared_memory() -> Iterator[None]:
    """The crash tests SIGKILL vLLM, which then cannot unlink its shared memory: removed when the session ends."""
    before = shm.segments()
    yield
    shm.release_orphans(shm.segments() - before)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An in-process client; entering it runs the app's lifespan (loads the model once)."""
    async with AsyncTestClient(app=app, timeout=120) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def sdk(client: AsyncTestClient[Litestar]) -> openai.AsyncOpenAI:
    """The official async OpenAI SDK, pointed at the app in-process (through the test client's transport)."""
    return openai.AsyncOpenAI(base_url=f"{client.base_url}/v1", api_key="unused", http_client=client, max_retries=0)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def all_clips(data_dir: Path) -> tuple[Path, LongInput]:
    """Every clip once, shuffled, with gaps: about 45 s (the clips and some twice), so chunked mode cuts it in two."""
    long_input = build_long_input(40, seed=3)
    return write_wav(data_dir / "all_clips.wav", long_input.samples), long_input


@pytest.fixture(scope="session")
def ffmpeg() -> Iterator[str]:
    """The ffmpeg CLI, used only to make test files in other formats (the gateway decodes with PyAV)."""
    from shutil import which

    path = which("ffmpeg")
    if path is None:
        pytest.fail("ffmpeg is not installed: run the README's test command (scripts/test.sh), which installs it")
    return path


pytest_plugins = ["tests.vllm_fixtures"]
