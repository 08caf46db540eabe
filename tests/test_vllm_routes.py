"""Both route families and every format through the gateway on a real vLLM serving a tiny Qwen3-ASR.

The tiny model answers ``language English<asr_text>hello world`` to any audio, so
each piece must come back as "hello world", in English. What happened inside vLLM
(how many requests, how many prompt tokens, how many requests per engine step) is
read from vLLM's own ``/metrics``, never assumed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from openai.types.audio import Transcription, TranscriptionVerbose

from gateway.app import create_app
from gateway.pipeline.plan import SAMPLE_RATE, Piece, locate_speech, plan_chunked, plan_full
from tests.corpus import LongInput, build_long_input, clip, read_wav, write_wav
from tests.cues import read_cues
from tests.server import live_server
from tests.vllm_fixtures import API_KEY, SERVED_NAME, VllmServer, vllm_settings

pytestmark = pytest.mark.vllm

HELLO = "hello world"
CHUNK_SECONDS = 30.0  # the settings' default, which the gateway fixture keeps


def expected_pieces(samples: np.ndarray, chunking: str | None) -> list[Piece]:
    """What the gateway's planner makes of the audio, planned again here on the same samples, speech located."""
    return locate_speech(plan_full(samples) if chunking is None else plan_chunked(samples, CHUNK_SECONDS), samples)


def assert_segments_are_the_pieces(spans: list[tuple[float, float]], pieces: list[Piece], duration: float) -> None:
    """One segment per piece, in order, each where its piece's sound is in the original audio.

    Qwen3-ASR gives no times: the gateway places each piece's text on its own piece's sound.
    """
    assert len(spans) == len(pieces)
    previous_end = 0.0
    for (start, end), piece in zip(spans, pieces, strict=True):
        assert piece.start / SAMPLE_RATE - 0.001 <= start <= end <= piece.end / SAMPLE_RATE + 0.001, (start, end)
        sound_start, sound_end = piece.speech
        assert start == pytest.approx(sound_start / SAMPLE_RATE, abs=0.001), "the segment starts where the sound does"
        assert end == pytest.approx(sound_end / SAMPLE_RATE, abs=0.001), "and ends where it ends"
        assert previous_end <= start
        assert end <= duration + 0.001
        previous_end = end


def upload(path: Path) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (path.name, path.read_bytes(), "audio/wav")}


@pytest.fixture(scope="module")
def short_clip() -> Path:
    return clip("ss_0870").path


@pytest.fixture(scope="module")
def three_minutes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LongInput]:
    long_input = build_long_input(180)
    return write_wav(tmp_path_factory.mktemp("long") / "three_minutes.wav", long_input.samples), long_input


async def test_health_and_models(vllm_client: AsyncTestClient[Litestar]) -> None:
    health = await vllm_client.get("/healthcheck")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    models = await vllm_client.get("/v1/models")
    assert [m["id"] for m in models.json()["data"]] == [SERVED_NAME, "whisper-1"]


@pytest.mark.parametrize("process_type", ["full", "chunked"])
async def test_reference_route(
    vllm_client: AsyncTestClient[Litestar], all_clips: tuple[Path, LongInput], process_type: str
) -> None:
    path, long_input = all_clips
    response = await vllm_client.post(
        "/v1/asr/transcribe/audio", files=upload(path), data={"process_type": process_type, "request_id": "r-1"}
    )
    assert response.status_code == 200, response.text
    pieces = expected_pieces(long_input.samples, None if process_type == "full" else "chunked")
    assert response.json() == {"text": " ".join([HELLO] * len(pieces)), "language": "en", "request_id": "r-1"}


@pytest.mark.parametrize("chunking", [None, "auto"])
async def test_openai_json_and_text(
    vllm_sdk: openai.AsyncOpenAI, all_clips: tuple[Path, LongInput], chunking: str | None
) -> None:
    path, long_input = all_clips
    expected = " ".join([HELLO] * len(expected_pieces(long_input.samples, chunking)))
    extra = {"chunking_strategy": chunking} if chunking else {}
    as_json = await vllm_sdk.audio.transcriptions.create(model=SERVED_NAME, file=path, **extra)  # type: ignore[call-overload]
    assert isinstance(as_json, Transcription)
    assert as_json.text == expected
    assert as_json.usage is not None
    assert as_json.usage.seconds >= long_input.duration
    as_text = await vllm_sdk.audio.transcriptions.create(model="whisper-1", file=path, response_format="text", **extra)  # type: ignore[call-overload]
    assert isinstance(as_text, str)
    assert as_text.strip() == expected, "the bare transcript, not vLLM's JSON"


@pytest.mark.parametrize("chunking", [None, "auto"])
async def test_openai_verbose_json_segments_are_the_pieces(
    vllm_sdk: openai.AsyncOpenAI, all_clips: tuple[Path, LongInput], chunking: str | None
) -> None:
    path, long_input = all_clips
    pieces = expected_pieces(long_input.samples, chunking)
    extra = {"chunking_strategy": chunking} if chunking else {}
    result = await vllm_sdk.audio.transcriptions.create(
        model="whisper-1", file=path, response_format="verbose_json", **extra
    )  # type: ignore[call-overload]
    assert isinstance(result, TranscriptionVerbose)
    assert result.language == "english"
    assert result.duration == pytest.approx(long_input.duration, abs=0.01)
    assert result.text == " ".join([HELLO] * len(pieces))
    assert result.words is None, "Qwen3-ASR has no word times: none are invented"
    assert result.segments is not None
    assert [(s.id, s.text.strip()) for s in result.segments] == [(i, HELLO) for i in range(len(pieces))]
    assert_segments_are_the_pieces([(s.start, s.end) for s in result.segments], pieces, result.duration)


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
@pytest.mark.parametrize("chunking", [None, "auto"])
async def test_subtitles(
    vllm_sdk: openai.AsyncOpenAI,
    all_clips: tuple[Path, LongInput],
    response_format: str,
    chunking: str | None,
) -> None:
    path, long_input = all_clips
    pieces = expected_pieces(long_input.samples, chunking)
    extra = {"chunking_strategy": chunking} if chunking else {}
    body = await vllm_sdk.audio.transcriptions.create(
        model="whisper-1", file=path, response_format=response_format, **extra
    )  # type: ignore[call-overload]
    assert isinstance(body, str)
    spans = read_cues(body, response_format)
    assert [text.strip() for _, _, text in spans] == [HELLO] * len(pieces)
    assert_segments_are_the_pieces([(start, end) for start, end, _ in spans], pieces, long_input.duration)


async def test_openai_stream_sends_each_piece_in_order(
    vllm_client: AsyncTestClient[Litestar], all_clips: tuple[Path, LongInput]
) -> None:
    path, long_input = all_clips
    pieces = plan_chunked(long_input.samples, CHUNK_SECONDS)
    response = await vllm_client.post(
        "/v1/audio/transcriptions",
        files=upload(path),
        data={"model": "whisper-1", "stream": "true", "chunking_strategy": "auto"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["transcript.text.delta"] * len(pieces) + ["transcript.text.done"]
    assert [e["delta"].strip() for e in events[:-1]] == [HELLO] * len(pieces)
    assert events[-1]["text"] == " ".join([HELLO] * len(pieces))
    assert "".join(e["delta"] for e in events[:-1]) == events[-1]["text"], "the deltas joined are the text"


async def test_chunked_three_minutes_goes_out_in_parallel_and_merges_in_order(
    vllm_client: AsyncTestClient[Litestar],
    vllm_sdk: openai.AsyncOpenAI,
    vllm_server: VllmServer,
    three_minutes: tuple[Path, LongInput],
) -> None:
    path, long_input = three_minutes
    pieces = plan_chunked(long_input.samples, CHUNK_SECONDS)
    assert len(pieces) >= 6

    before = vllm_server.metrics()
    started = time.perf_counter()
    response = await vllm_client.post("/v1/asr/transcribe/audio", files=upload(path), data={"process_type": "chunked"})
    seconds = time.perf_counter() - started
    after = vllm_server.metrics()
    assert response.status_code == 200, response.text
    assert response.json()["text"] == " ".join([HELLO] * len(pieces))

    # vLLM saw exactly one request per planned piece ...
    assert after.finished_requests - before.finished_requests == len(pieces)
    # ... and ran several of them in the same engine steps: decode steps carrying 2-8
    # requests, or prefill steps holding more than one 30 s prompt. Sent one after
    # another, the same pieces give neither (see tests/vllm_support/README.md).
    together = (after.steps_with_2_to_8_tokens - before.steps_with_2_to_8_tokens) + (
        after.steps_over_512_tokens - before.steps_over_512_tokens
    )
    steps = after.steps - before.steps
    print(f"\n3-min chunked: {len(pieces)} pieces, {steps:.0f} engine steps, {together:.0f} batched, {seconds:.2f} s")
    assert together >= 1, f"no engine step held more than one piece ({steps:.0f} steps)"
    assert steps < 6 * len(pieces), "as many steps as one request at a time would take"

    # Merged in order: segment i is piece i, at its real position in the file.
    result = await vllm_sdk.audio.transcriptions.create(
        model="whisper-1", file=path, response_format="verbose_json", chunking_strategy="auto"
    )
    assert result.segments is not None
    assert [s.text.strip() for s in result.segments] == [HELLO] * len(pieces)
    assert_segments_are_the_pieces([(s.start, s.end) for s in result.segments], pieces, long_input.duration)


async def test_pieces_alone_run_one_request_per_step(
    vllm_server: VllmServer,
    vllm_client: AsyncTestClient[Litestar],
    three_minutes: tuple[Path, LongInput],
    tmp_path: Path,
) -> None:
    """The control of the test above: the same kind of pieces sent one at a time never share a step."""
    _, long_input = three_minutes
    pieces = plan_chunked(long_input.samples, CHUNK_SECONDS)[:3]
    before = vllm_server.metrics()
    for piece in pieces:
        path = write_wav(
            tmp_path / f"piece-{piece.index}.wav", long_input.samples[piece.start : piece.end][::-1].copy()
        )
        response = await vllm_client.post("/v1/asr/transcribe/audio", files=upload(path))
        assert response.status_code == 200, response.text
    after = vllm_server.metrics()
    assert after.finished_requests - before.finished_requests == len(pieces)
    assert after.steps_with_2_to_8_tokens - before.steps_with_2_to_8_tokens == 0
    assert after.steps_over_512_tokens - before.steps_over_512_tokens == 0


async def test_forced_language_reaches_the_model(
    vllm_server: VllmServer, vllm_client: AsyncTestClient[Litestar], vllm_sdk: openai.AsyncOpenAI, short_clip: Path
) -> None:
    async def prompt_tokens(language: str | None) -> tuple[float, dict[str, str]]:
        before = vllm_server.metrics()
        data = {"language": language} if language else {}
        response = await vllm_client.post("/v1/asr/transcribe/audio", files=upload(short_clip), data=data)
        assert response.status_code == 200, response.text
        after = vllm_server.metrics()
        assert after.finished_requests - before.finished_requests == 1
        return after.prompt_tokens - before.prompt_tokens, response.json()

    detected, body = await prompt_tokens(None)
    assert (body["text"], body["language"]) == (HELLO, "en")
    forced, body = await prompt_tokens("fr")
    assert (body["text"], body["language"]) == (HELLO, "fr")
    # "language French<asr_text>" prefilled in the assistant turn: 3 more prompt tokens.
    assert forced > detected, (forced, detected)
    assert forced - detected == 3

    verbose = await vllm_sdk.audio.transcriptions.create(
        model="whisper-1", file=short_clip, response_format="verbose_json", language="fr"
    )
    assert (verbose.language, verbose.text) == ("french", HELLO)


async def test_prompt_reaches_the_model_as_context(
    vllm_server: VllmServer, vllm_sdk: openai.AsyncOpenAI, short_clip: Path
) -> None:
    before = vllm_server.metrics()
    plain = await vllm_sdk.audio.transcriptions.create(model="whisper-1", file=short_clip)
    middle = vllm_server.metrics()
    prompted = await vllm_sdk.audio.transcriptions.create(
        model="whisper-1", file=short_clip, prompt="Glossary: Qwen, vLLM, Litestar, msgspec."
    )
    after = vllm_server.metrics()
    assert plain.text == prompted.text == HELLO
    assert (after.prompt_tokens - middle.prompt_tokens) > (middle.prompt_tokens - before.prompt_tokens)


async def test_vllm_refusal_passes_through_as_asr_6004(
    vllm_client: AsyncTestClient[Litestar], three_minutes: tuple[Path, LongInput], caplog: pytest.LogCaptureFixture
) -> None:
    """Full mode sends 3 minutes as one piece: more than the tiny model's 2048-token context. The refusal is
    not sent again (it would be refused again), and it says what the client can do."""
    path, long_input = three_minutes
    resent_before = _resent_pieces((await vllm_client.get("/metrics")).text)
    with caplog.at_level(logging.INFO, logger="gateway.pipeline.run"):
        response = await vllm_client.post("/v1/asr/transcribe/audio", files=upload(path), data={"process_type": "full"})
    assert response.status_code == 400, response.text
    refused = [r for r in caplog.records if getattr(r, "error_code", "") == "ASR-6004"]
    assert len(refused) == 1, "the refused piece is logged once, with vLLM's words"
    assert "maximum context length" in str(getattr(refused[0], "error", ""))
    body = response.json()
    assert body["code"] == "ASR-6004"
    assert "maximum context length" in body["error"]
    seconds = len(long_input.samples) / SAMPLE_RATE
    assert f"{seconds:.0f} s of audio in one piece" in body["error"]
    assert "process_type=chunked" in body["error"]
    assert _resent_pieces((await vllm_client.get("/metrics")).text) == resent_before


def _resent_pieces(metrics: str) -> float:
    found = re.search(r"^asr_gateway_backend_piece_retries_total (\S+)$", metrics, re.MULTILINE)
    assert found, "the gateway's retry counter is exported"
    return float(found.group(1))


async def test_a_base_url_without_v1_is_named_as_the_fault(
    vllm_server: VllmServer, short_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """vLLM's /health answers at its root whatever the base URL's path, so a VLLM_BASE_URLS without /v1 looks
    healthy; every request is then a 404, which says where the fault is."""
    root = vllm_server.base_url.removesuffix("/v1")
    with caplog.at_level(logging.WARNING):
        async with AsyncTestClient(app=create_app(vllm_settings(root)), timeout=120) as client:
            response = await client.post("/v1/asr/transcribe/audio", files=upload(short_clip))
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "ASR-6004"
    assert "ending in /v1" in response.json()["error"]
    assert any("ending in /v1" in str(getattr(r, "hint", "")) for r in caplog.records), caplog.text


async def test_the_real_server_on_vllm_under_concurrent_requests(vllm_server: VllmServer, tmp_path: Path) -> None:
    """``asr-gateway serve`` with BACKEND=vllm as users run it, and requests truly at once.

    (The in-process test client serializes requests; a real server does not.)
    """
    samples = read_wav(clip("goforward").path)
    bodies = [write_wav(tmp_path / f"c{i}.wav", np.roll(samples, 800 * i)).read_bytes() for i in range(12)]
    env = {"BACKEND": "vllm", "VLLM_BASE_URLS": vllm_server.base_url, "VLLM_API_KEY": API_KEY, "LOG_FORMAT": "json"}
    before = vllm_server.metrics()
    with live_server(tmp_path / "gateway.log", env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            responses = await asyncio.gather(
                *(
                    http.post("/v1/audio/transcriptions", files={"file": ("a.wav", body)}, data={"model": SERVED_NAME})
                    for body in bodies
                )
            )
    after = vllm_server.metrics()
    assert [(r.status_code, r.json()["text"]) for r in responses] == [(200, HELLO)] * len(bodies)
    assert after.finished_requests - before.finished_requests == len(bodies)
    assert after.steps_with_2_to_8_tokens + after.steps_over_512_tokens > (
        before.steps_with_2_to_8_tokens + before.steps_over_512_tokens
    ), "the requests reached vLLM together"


async def test_word_times_are_refused_not_invented(
    vllm_sdk: openai.AsyncOpenAI, all_clips: tuple[Path, LongInput]
) -> None:
    path, _ = all_clips
    with pytest.raises(openai.BadRequestError) as error:
        await vllm_sdk.audio.transcriptions.create(
            model="whisper-1", file=path, response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert error.value.body["code"] == "ASR-6045"  # type: ignore[index]
    assert error.value.body["param"] == "timestamp_granularities[]"  # type: ignore[index]
