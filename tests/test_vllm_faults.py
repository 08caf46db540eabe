"""vLLM going away: a crash mid-run, a replica that is down, a replica stopped under load.

A second real vLLM ("replica B") lives for this module only, so that the
session's server is never harmed; at most two vLLM servers run at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from compat.errors import BackendHTTPError
from gateway.app import create_app
from gateway.backends.base import PieceRequest
from gateway.backends.factory import build_backend
from gateway.backends.vllm import VllmBackend
from gateway.backends.vllm.request import audio_at, chat_body
from gateway.pipeline.plan import plan_chunked
from tests.corpus import LongInput, build_long_input, clip, read_wav, write_wav
from tests.vllm_fixtures import VllmServer, new_vllm_server, vllm_settings

pytestmark = pytest.mark.vllm

HELLO = "hello world"


@pytest.fixture(scope="module")
def replica_b(vllm_python: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """A second real vLLM (started by each test that needs it running; stopped at the module's end)."""
    server = new_vllm_server(vllm_python, tiny_model, tmp_path_factory.mktemp("vllm-b"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LongInput]:
    long_input = build_long_input(170, seed=11)
    return write_wav(tmp_path_factory.mktemp("faults") / "long.wav", long_input.samples), long_input


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def gateway(*base_urls: str, **overrides: object) -> tuple[VllmBackend, AsyncTestClient[Litestar]]:
    settings = vllm_settings(*base_urls, **overrides)
    backend = build_backend(settings)
    assert isinstance(backend, VllmBackend)
    return backend, AsyncTestClient(app=create_app(settings, backend=backend), timeout=120)


async def chunked(client: AsyncTestClient[Litestar], path: Path) -> tuple[int, dict[str, object]]:
    content = await asyncio.to_thread(path.read_bytes)
    response = await client.post(
        "/v1/asr/transcribe/audio", files={"file": (path.name, content, "audio/wav")}, data={"process_type": "chunked"}
    )
    return response.status_code, response.json()


async def eventually_healthy(client: AsyncTestClient[Litestar], want: int, seconds: float = 15) -> None:
    for _ in range(int(seconds * 10)):
        if (await client.get("/healthcheck")).status_code == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/healthcheck did not turn {want} within {seconds} s")


def kill_when_busy(backend: VllmBackend, server: VllmServer, killed: threading.Event) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(r.in_flight for r in backend.replicas):
            server.kill()
            killed.set()
            return
        time.sleep(0.0005)


def distinct_files(directory: Path, long_input: LongInput, count: int) -> list[Path]:
    """The same speech, shifted: different bytes, so vLLM's caches never answer for it."""
    return [
        write_wav(directory / f"shifted-{i}.wav", np.roll(long_input.samples, 1600 * (i + 1))) for i in range(count)
    ]


async def test_vllm_killed_mid_run_then_back(
    replica_b: VllmServer, long_file: tuple[Path, LongInput], tmp_path: Path
) -> None:
    replica_b.ensure_running()
    path, long_input = long_file
    backend, client = await gateway(replica_b.base_url)
    async with client:
        assert (await client.get("/healthcheck")).status_code == 200
        status, body = await chunked(client, path)
        assert status == 200, body

        # Crash vLLM (SIGKILL to its whole process group) while pieces are at it. The
        # test client blocks this loop during a request (the app runs in its own
        # thread), so a thread watches the backend and pulls the trigger.
        killed = threading.Event()
        killer = threading.Thread(target=kill_when_busy, args=(backend, replica_b, killed))
        killer.start()
        status, body = await chunked(client, distinct_files(tmp_path, long_input, 1)[0])
        killer.join()
        assert killed.is_set(), "no piece was ever seen in flight"
        if status == 200:  # pieces that finished before the crash: a partial result, flagged
            assert body["warning"]["code"] == "ASR-6030", body  # type: ignore[index]
        else:
            assert (status, body["code"]) == (503, "ASR-6003"), body

        # The gateway stays up, says the backend is down, and fails fast.
        await eventually_healthy(client, 500)
        status, body = await chunked(client, path)
        assert (status, body["code"]) == (503, "ASR-6003"), body
        assert (await client.get("/v1/models")).status_code == 200

        # vLLM back (same port): the gateway notices by itself and serves again.
        await asyncio.to_thread(replica_b.start)
        await eventually_healthy(client, 200)
        status, body = await chunked(client, path)
        assert status == 200, body
        assert body["text"] == " ".join([HELLO] * len(plan_chunked(long_input.samples, 30.0)))


async def test_a_replica_that_is_down_is_never_a_problem(
    vllm_server: VllmServer, long_file: tuple[Path, LongInput], tmp_path: Path
) -> None:
    _, long_input = long_file
    pieces = len(plan_chunked(long_input.samples, 30.0))
    files = distinct_files(tmp_path, long_input, 6)
    backend, client = await gateway(closed_port_url(), vllm_server.base_url)
    async with client:
        assert [r.healthy for r in backend.replicas] == [False, True]
        assert (await client.get("/healthcheck")).status_code == 200
        before = vllm_server.metrics()
        results = await asyncio.gather(*(chunked(client, f) for f in files))
        after = vllm_server.metrics()
    assert [status for status, _ in results] == [200] * len(files)
    assert all(body["text"] == " ".join([HELLO] * pieces) for _, body in results)
    assert after.finished_requests - before.finished_requests == pieces * len(files)


async def test_two_real_replicas_share_the_load_and_one_stopped_is_skipped(
    vllm_server: VllmServer, replica_b: VllmServer, long_file: tuple[Path, LongInput], tmp_path: Path
) -> None:
    replica_b.ensure_running()
    _, long_input = long_file
    pieces = len(plan_chunked(long_input.samples, 30.0))
    files = distinct_files(tmp_path, long_input, 8)
    backend, client = await gateway(vllm_server.base_url, replica_b.base_url)
    async with client:
        assert [r.healthy for r in backend.replicas] == [True, True]

        # Both up: least-in-flight routing spreads each request's pieces over both (counted by each vLLM).
        a0, b0 = vllm_server.metrics(), replica_b.metrics()
        results = await asyncio.gather(*(chunked(client, f) for f in files[:4]))
        a1, b1 = vllm_server.metrics(), replica_b.metrics()
        assert [status for status, _ in results] == [200] * 4
        on_a, on_b = a1.finished_requests - a0.finished_requests, b1.finished_requests - b0.finished_requests
        assert on_a + on_b == 4 * pieces
        assert on_a > 0
        assert on_b > 0
        assert abs(on_a - on_b) <= 4 * pieces // 2, (on_a, on_b)

        # B stopped as an operator stops it (SIGTERM): still every request succeeds,
        # including the first burst, sent before any probe noticed.
        replica_b.stop()
        results = await asyncio.gather(*(chunked(client, f) for f in files[4:]))
        a2 = vllm_server.metrics()
        assert [status for status, _ in results] == [200] * 4, results
        assert all("warning" not in body for _, body in results), results
        assert a2.finished_requests - a1.finished_requests == 4 * pieces
        assert [r.healthy for r in backend.replicas] == [True, False]
        assert (await client.get("/healthcheck")).status_code == 200


@pytest.mark.parametrize("key", ["sk-wrong", ""])
async def test_a_key_vllm_refuses_is_named(vllm_server: VllmServer, key: str, caplog: pytest.LogCaptureFixture) -> None:
    """VLLM_API_KEY reaches vLLM: the right one is what every other test here uses; a wrong or missing one
    gets ASR-6004 with vLLM's 401 and a message that points at the server's setting, logged once."""
    vllm_server.ensure_running()
    speech = clip("goforward").path
    _, client = await gateway(vllm_server.base_url, vllm_api_key=key)
    with caplog.at_level(logging.WARNING, logger="gateway.backends.vllm.client"):
        async with client:
            assert (await client.get("/healthcheck")).status_code == 200, "/health needs no key"
            for _ in range(2):
                response = await client.post(
                    "/v1/audio/transcriptions", files={"file": (speech.name, speech.read_bytes(), "audio/wav")}
                )
                assert response.status_code == 401
                error = response.json()["error"]
                assert error["code"] == "ASR-6004"
                assert "refused the gateway's key" in error["message"]
                assert "VLLM_API_KEY" in error["message"]
            await asyncio.sleep(1.2)  # more probes than one
    refused = [r for r in caplog.records if r.getMessage() == "vLLM refused the gateway's key"]
    assert len(refused) == 1


async def test_a_request_after_a_500_is_served(vllm_server: VllmServer) -> None:
    """vLLM closes its connection after a 500; the next request, sent on that kept-alive connection before
    the close was seen, met a reset: it was answered ASR-6003 "unreachable" and the replica marked down
    (with VLLM_MEDIA_DIR and a vLLM lacking --allowed-local-media-path, every request failed that way, and the
    500 that says why was never seen). It is sent again on a new connection."""
    vllm_server.ensure_running()
    assert vllm_server.media_dir is not None
    backend = build_backend(vllm_settings(vllm_server.base_url, vllm_media_dir=str(vllm_server.media_dir)))
    assert isinstance(backend, VllmBackend)
    await backend.start()
    try:
        replica = backend.replicas[0]
        samples = read_wav(clip("goforward").path)
        missing = chat_body(
            PieceRequest(samples=samples), audio_at(f"file://{vllm_server.media_dir}/missing.wav"), backend.model_id
        )
        with pytest.raises(BackendHTTPError) as refused:  # vLLM: "No such file or directory", a 500
            await backend._complete(replica, PieceRequest(samples=samples), missing)
        assert refused.value.backend_status == 500
        result = await backend.transcribe(PieceRequest(samples=samples))
        assert result.text == HELLO
        assert replica.healthy
    finally:
        await backend.close()
