"""Limits that hold under load, 429s a client can act on, fairness, disconnects, metrics and API keys.

A load generator on loopback (bounded in count and time) drives a real server
(uvicorn, in this process) whose backend is slowed on purpose.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from compat.errors import BackendFailed
from gateway import heartbeats
from gateway.app import create_app
from gateway.cores import usable_cores
from tests.conftest import make_settings
from tests.corpus import build_long_input, clip, read_wav, write_wav
from tests.fakes import SlowBackend, serve, until

SHORT = clip("goforward").path
REFERENCE = "/v1/asr/transcribe/audio"
OPENAI = "/v1/audio/transcriptions"


def upload(path: Path) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (path.name, path.read_bytes(), "audio/wav")}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition."""
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{{{re.escape(selector)}}} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("envelope") / "long.wav", build_long_input(580, seed=9).samples)


async def test_limits_hold_and_429_leads_to_success(caplog: pytest.LogCaptureFixture) -> None:
    backend = SlowBackend(delay=0.4)
    settings = make_settings(max_concurrent_full=2, queue_timeout_seconds=0.5)
    caplog.set_level(logging.INFO, logger="gateway.pipeline.core")
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        depth_seen: list[float] = []
        stop = asyncio.Event()

        async def watch_metrics() -> None:
            while not stop.is_set():
                text = (await http.get("/metrics")).text
                depth_seen.append(metric(text, "asr_gateway_queue_depth"))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch_metrics())
        responses = await asyncio.gather(
            *(http.post(REFERENCE, files=upload(SHORT), headers={"X-Request-ID": f"burst-{i}"}) for i in range(10))
        )
        stop.set()
        await watcher
        assert backend.most_in_flight == 2, "never more in flight than the full-mode limit"
        ok = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 429]
        assert len(ok) + len(refused) == 10
        assert len(ok) >= 2
        assert refused, "a burst of 10 over a limit of 2 with a 0.5 s queue must refuse some"
        assert max(depth_seen) > 0, "the queue depth shows in the metrics as it happens"
        waits = [r.timings.get("queue") for r in caplog.records if getattr(r, "error_code", "") == "ASR-6043"]
        assert len(waits) == len(refused), "each refusal is logged once"
        assert all(wait is not None and wait >= 0.5 for wait in waits), waits  # with how long it waited
        for response in refused:
            body = response.json()
            assert body["code"] == "ASR-6043"
            assert body["retry_after_seconds"] == int(response.headers["retry-after"]) >= 1
            assert body["request_id"] == response.headers["x-request-id"]
        # honouring Retry-After leads to success
        for response in refused:
            await asyncio.sleep(int(response.headers["retry-after"]))
            again = await http.post(REFERENCE, files=upload(SHORT))
            assert again.status_code == 200, again.text
        text = (await http.get("/metrics")).text
        assert metric(text, "asr_gateway_queue_wait_seconds_count", path=REFERENCE) >= 10
        assert metric(text, "asr_gateway_http_errors_total", path=REFERENCE, status_code="429") == len(refused)
        assert metric(text, "asr_gateway_queue_depth") == 0


async def test_a_request_refused_a_place_is_never_decoded() -> None:
    """A place first, then the decode: a burst over the limit costs no decoding for those refused, and holds no PCM."""
    backend = SlowBackend(delay=1.0)
    settings = make_settings(max_concurrent_full=1, queue_timeout_seconds=0.3)
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        responses = await asyncio.gather(*(http.post(REFERENCE, files=upload(SHORT)) for _ in range(5)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 429, 429, 429, 429], statuses
        text = (await http.get("/metrics")).text
    assert metric(text, "asr_gateway_ffmpeg_convert_total", status="success") == 1, "only the admitted one decoded"
    assert metric(text, "asr_gateway_ffmpeg_convert_total", status="failed") == 0


async def test_uploads_are_read_while_every_decoder_is_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decodes that take long (a burst of long files) hold up no other request's upload.

    Litestar writes an upload over 1 MiB to disk through the event loop's default thread pool;
    decoding there too filled it, and every upload waited for decodes to end. The decoder is held
    here until the end (a fake: no real file decodes for as long as the test needs).
    """
    from gateway.pipeline import core

    held = threading.Event()
    started: list[int] = []

    def slow_decode(*args: Any, **kwargs: Any) -> Any:
        started.append(1)
        held.wait(60)
        return real_decode(*args, **kwargs)

    real_decode = core.decode_audio
    monkeypatch.setattr(core, "decode_audio", slow_decode)
    long = write_wav(tmp_path / "long.wav", build_long_input(60, seed=5).samples)  # 1.9 MB: decoded in a thread
    default_pool = min(32, (os.cpu_count() or 1) + 4)  # the loop's default executor's threads
    settings = make_settings(max_concurrent_full=default_pool + 2, queue_timeout_seconds=120)
    app = create_app(settings, backend=SlowBackend(delay=0.01))
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=120) as http:
        busy = [asyncio.create_task(http.post(REFERENCE, files=upload(long))) for _ in range(default_pool + 2)]
        await until(lambda: len(started) >= min(default_pool, usable_cores()), 60)
        try:
            # another upload, read whole before its form is found wrong: it needs the pool for its writes
            async with asyncio.timeout(30):
                refused = await http.post(REFERENCE, files=upload(long), data={"process_type": "bogus"})
        finally:
            held.set()
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "ASR-6045"
        assert [r.status_code for r in await asyncio.gather(*busy)] == [200] * len(busy)


async def test_openai_sdk_default_retries_complete_a_burst() -> None:
    backend = SlowBackend(delay=0.3)
    settings = make_settings(max_concurrent_full=2, queue_timeout_seconds=0.2)
    async with serve(create_app(settings, backend=backend)) as base:
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused")  # default max_retries=2
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.audio.transcriptions.create(model="whisper-1", file=SHORT) for _ in range(6))
        )
        assert all(r.text.startswith("hello world") for r in results)
        assert backend.most_in_flight == 2
        assert time.monotonic() - started < 30


@pytest.mark.parametrize("ids", [("long", "short"), ("same", "same")], ids=["own ids", "one id for both"])
async def test_pieces_in_flight_are_capped_and_shared_fairly(long_file: Path, ids: tuple[str, str]) -> None:
    """A short request takes the next free place, not the back of a long one's line; a client's request id
    (an n8n workflow may send one fixed X-Request-ID) does not decide whose line a piece waits in."""
    long_id, short_id = ids
    backend = SlowBackend(delay=0.3)
    settings = make_settings(embedded_batch_size=2, embedded_workers=1)  # 8 pieces at the backend, all requests
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        long_request = asyncio.create_task(
            http.post(REFERENCE, files=upload(long_file), data={"process_type": "chunked", "request_id": long_id})
        )
        await until(lambda: backend.in_flight == 8)  # the long request holds every place
        fields = {"process_type": "chunked", "request_id": short_id}
        short = await http.post(REFERENCE, files=upload(SHORT), data=fields)
        long_response = await long_request
    assert short.status_code == 200
    assert long_response.status_code == 200
    assert backend.most_in_flight == 8
    assert len(backend.order) >= 20
    # the short request took the next free place instead of queueing behind the long one's pieces
    short_seconds = len(read_wav(SHORT)) / 16_000  # its one piece is at most the clip; the long one's are ~20-30 s
    (short_at,) = [i for i, s in enumerate(backend.finished_seconds) if s <= short_seconds]
    assert len(backend.order) - short_at - 1 >= 8, backend.finished_seconds


async def test_client_gone_while_queued_frees_its_place_and_sends_nothing() -> None:
    gate = asyncio.Event()
    backend = SlowBackend(gate=gate)
    settings = make_settings(max_concurrent_full=1, queue_timeout_seconds=60)
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:

        async def queued(depth: int) -> bool:
            return metric((await http.get("/metrics")).text, "asr_gateway_queue_depth") == depth

        holder = asyncio.create_task(http.post(REFERENCE, files=upload(SHORT), data={"request_id": "holder"}))
        await until(lambda: backend.calls["holder"] == 1)  # it holds the one place until the gate opens
        quitter = asyncio.create_task(http.post(REFERENCE, files=upload(SHORT), data={"request_id": "quitter"}))
        await until(lambda: queued(1))
        quitter.cancel()  # the client goes away while queued
        await until(lambda: queued(0))
        gate.set()
        assert (await holder).status_code == 200
        after = await http.post(REFERENCE, files=upload(SHORT), data={"request_id": "after"})
        assert after.status_code == 200
    assert backend.calls["quitter"] == 0, "a request whose client left in the queue sends no piece"


async def test_client_gone_in_flight_cancels_its_pieces(long_file: Path) -> None:
    backend = SlowBackend(delay=0.5)
    settings = make_settings(embedded_batch_size=2, embedded_workers=1)
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        request = asyncio.create_task(
            http.post(REFERENCE, files=upload(long_file), data={"process_type": "chunked", "request_id": "gone"})
        )
        await until(lambda: backend.in_flight > 0)  # decoded, planned and sending
        request.cancel()
        await until(lambda: backend.in_flight == 0)  # its pieces in flight were cancelled
        sent = backend.calls["gone"]
    assert backend.cancelled["gone"] >= 1
    assert sent < 19, "the rest of its pieces were never sent"


async def test_a_quiet_stream_sends_keep_alive_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a piece takes long (a whole file in full mode is one), SSE comments keep proxies from closing the
    stream; the official SDK skips them."""
    monkeypatch.setattr(heartbeats, "EVERY_SECONDS", 0.1)
    gate = asyncio.Event()
    backend = SlowBackend(gate=gate)  # the piece finishes once three comments have come
    async with serve(create_app(make_settings(), backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        form = {"model": "whisper-1", "stream": "true"}
        lines = []
        async with http.stream("POST", OPENAI, files=upload(SHORT), data=form) as response:
            assert response.headers["x-accel-buffering"] == "no"
            async for line in response.aiter_lines():
                lines.append(line)
                if lines.count(": keep-alive") == 3:
                    gate.set()
        data = [line for line in lines if line.startswith("data: ")]
        assert [json.loads(line[6:])["type"] for line in data] == ["transcript.text.delta", "transcript.text.done"]
        assert lines.index(data[0]) > lines.index(": keep-alive"), lines
        backend.gate = None
        backend.delay = 0.3
        sdk = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
        stream = await sdk.audio.transcriptions.create(model="whisper-1", file=SHORT, stream=True)
        kinds = [event.type async for event in stream]
    assert kinds == ["transcript.text.delta", "transcript.text.done"]


async def test_a_stream_whose_client_leaves_cancels_its_pieces_and_frees_its_place(
    long_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.http_errors")
    backend = SlowBackend(delay=0.5)
    settings = make_settings(embedded_batch_size=2, embedded_workers=1)
    form = {"model": "whisper-1", "chunking_strategy": "auto", "stream": "true"}
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        async with http.stream("POST", OPENAI, files=upload(long_file), data=form) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    break  # the first piece's text: then the client goes
        await until(lambda: backend.in_flight == 0)  # its pieces in flight were cancelled

        async def none_in_progress() -> bool:
            text = (await http.get("/metrics")).text
            return metric(text, "asr_gateway_requests_in_progress", mode="chunked") == 0

        await until(none_in_progress)

        async def counted_as_gone() -> bool:  # its 200 had begun: without this it counted as a success
            text = (await http.get("/metrics")).text
            return metric(text, "asr_gateway_http_errors_total", path=OPENAI, status_code="499") == 1

        await until(counted_as_gone)
    assert sum(backend.cancelled.values()) >= 1
    assert sum(backend.calls.values()) < 19, "the rest of its pieces were never sent"
    assert [r.path for r in caplog.records if r.message == "client disconnected"] == [OPENAI]


async def test_partial_result_is_flagged(tmp_path: Path) -> None:
    backend = SlowBackend(delay=0.01, fail_pieces={1})
    long = write_wav(tmp_path / "partial.wav", build_long_input(70, seed=2).samples)
    async with serve(create_app(make_settings(), backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post(REFERENCE, files=upload(long), data={"process_type": "chunked"})
        assert response.status_code == 200
        assert response.headers["x-asr-warning"] == "ASR-6030"
        body = response.json()
        assert body["warning"]["code"] == "ASR-6030"
        assert body["warning"]["failed_pieces"] == [1]
        assert "hello world 0" in body["text"]
        assert "hello world 1" not in body["text"]
        assert backend.calls[body["request_id"]] == backend.finished[body["request_id"]] + 2  # the retry
        text = (await http.get("/metrics")).text
        assert metric(text, "asr_gateway_partial_results_total") == 1
        assert metric(text, "asr_gateway_backend_piece_retries_total") >= 1

        # The OpenAI route: a `warning` in json and verbose_json and the header on every format.
        chunked = {"model": "whisper-1", "chunking_strategy": "auto"}
        for response_format in ("json", "verbose_json", "text", "srt"):
            response = await http.post(OPENAI, files=upload(long), data={**chunked, "response_format": response_format})
            assert response.status_code == 200, response.text
            assert response.headers["x-asr-warning"] == "ASR-6030"
            if response_format.endswith("json"):
                warning = response.json()["warning"]
                assert warning["code"] == "ASR-6030"
                assert warning["failed_pieces"] == [1]
                assert "1 of " in warning["message"]
            assert "hello world 0" in response.text
            assert "hello world 1" not in response.text
        # A stream's headers leave before the outcome is known: its done event carries the warning.
        response = await http.post(OPENAI, files=upload(long), data={**chunked, "stream": "true"})
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1]["type"] == "transcript.text.done"
        assert events[-1]["warning"]["failed_pieces"] == [1]
        whole = await http.post(OPENAI, files=upload(SHORT), data={"model": "whisper-1", "response_format": "json"})
        assert "warning" not in whole.json()
        assert "x-asr-warning" not in whole.headers


async def test_backend_timeouts_and_failures_in_both_shapes() -> None:
    """A piece that times out twice is ASR-6002 (503); a backend failure it cannot explain ASR-6001 (500)."""
    slow = SlowBackend(delay=2.0)
    settings = make_settings(full_timeout_seconds=0.2, chunk_timeout_seconds=0.2)
    async with serve(create_app(settings, backend=slow)) as base, httpx.AsyncClient(base_url=base) as http:
        timed_out = await http.post(REFERENCE, files=upload(SHORT), data={"request_id": "late"})
        assert timed_out.status_code == 503
        assert timed_out.json()["code"] == "ASR-6002"
        assert "within 0.2 s" in timed_out.json()["error"]
        assert slow.calls["late"] == 2, "one retry"
        late = await http.post(OPENAI, files=upload(SHORT), data={"model": "whisper-1", "chunking_strategy": "auto"})
        assert late.status_code == 503
        assert late.json()["error"]["code"] == "ASR-6002"
        assert late.json()["error"]["type"] == "server_error"
    broken = SlowBackend(delay=0.01, fail_pieces={0}, failure=BackendFailed)
    async with serve(create_app(make_settings(), backend=broken)) as base, httpx.AsyncClient(base_url=base) as http:
        failed = await http.post(REFERENCE, files=upload(SHORT))
        assert failed.status_code == 500
        assert failed.json()["code"] == "ASR-6001"
        failed = await http.post(OPENAI, files=upload(SHORT), data={"model": "whisper-1"})
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "ASR-6001"


async def test_a_stream_that_fails_after_it_began_counts_as_an_error() -> None:
    """Its 200 has left before the pieces fail: the error event says so, and the metrics count the error."""
    broken = SlowBackend(delay=0.01, fail_pieces={0}, failure=BackendFailed)
    async with serve(create_app(make_settings(), backend=broken)) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post(OPENAI, files=upload(SHORT), data={"model": "whisper-1", "stream": "true"})
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1]["type"] == "error", events
        assert events[-1]["error"]["code"] == "ASR-6001"
        text = (await http.get("/metrics")).text
    path = {"path": OPENAI}
    assert metric(text, "asr_gateway_http_errors_total", **path, status_code="500") == 1
    assert metric(text, "asr_gateway_http_requests_total", **path, status="error") == 1
    assert metric(text, "asr_gateway_http_requests_total", **path, status="all") == 1


async def test_openai_429_and_the_chunked_limit() -> None:
    """The chunked limit holds; the OpenAI route's 429 is a rate_limit_error with the Retry-After the SDKs honour."""
    backend = SlowBackend(delay=2.0)  # the first holds its place well past the others' 0.2 s in the queue
    settings = make_settings(max_concurrent_chunked=1, queue_timeout_seconds=0.2)
    chunked = {"model": "whisper-1", "chunking_strategy": "auto"}
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        responses = await asyncio.gather(*(http.post(OPENAI, files=upload(SHORT), data=chunked) for _ in range(3)))
        assert sorted(r.status_code for r in responses) == [200, 429, 429]
        for refused in (r for r in responses if r.status_code == 429):
            assert int(refused.headers["retry-after"]) >= 1
            error = refused.json()["error"]
            assert (error["type"], error["code"]) == ("rate_limit_error", "ASR-6043")
        assert backend.most_in_flight == 1
        waits = metric((await http.get("/metrics")).text, "asr_gateway_queue_wait_seconds_count", path=OPENAI)
        assert waits == 3, "the two waits that ended in a 429 are counted too"
        full = await http.post(OPENAI, files=upload(SHORT), data={"model": "whisper-1"})
        assert full.status_code == 200, "full mode has its own limit"


async def test_default_process_type_applies_to_both_routes(tmp_path: Path) -> None:
    """DEFAULT_PROCESS_TYPE=chunked: a request that names no mode is cut into pieces on either route."""
    backend = SlowBackend(delay=0.01)
    long = write_wav(tmp_path / "long.wav", build_long_input(45, seed=3).samples)
    settings = make_settings(default_process_type="chunked")
    async with serve(create_app(settings, backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        for path, data in ((REFERENCE, {"request_id": "ref"}), (OPENAI, {"model": "whisper-1"})):
            response = await http.post(path, files=upload(long), data=data, headers={"X-Request-ID": "oa"})
            assert response.status_code == 200, response.text
        assert backend.calls["ref"] == backend.calls["oa"] == 2
        full = await http.post(REFERENCE, files=upload(long), data={"process_type": "full", "request_id": "full"})
        assert full.status_code == 200
        assert backend.calls["full"] == 1


async def test_a_long_transcript_is_merged_and_rendered_off_the_loop(long_file: Path) -> None:
    """Over LONG_TRANSCRIPT_SECONDS (580 s here) merging and rendering run in a thread; the answer is whole."""
    backend = SlowBackend(delay=0.01)
    async with serve(create_app(make_settings(), backend=backend)) as base, httpx.AsyncClient(base_url=base) as http:
        form = {"model": "whisper-1", "chunking_strategy": "auto"}
        for response_format in ("verbose_json", "srt"):
            response = await http.post(
                OPENAI, files=upload(long_file), data={**form, "response_format": response_format}, timeout=60
            )
            assert response.status_code == 200, response.text
            assert "hello world 17" in response.text  # the last of the file's 18 pieces
        segments = (
            await http.post(OPENAI, files=upload(long_file), data={**form, "response_format": "verbose_json"})
        ).json()["segments"]
        assert [s["text"] for s in segments] == [f"hello world {i}" for i in range(len(segments))]
        assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(segments))
