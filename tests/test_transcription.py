"""Real speech through both routes, every format and both modes: the words must be right."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from openai.types.audio import Transcription, TranscriptionVerbose

from tests.corpus import LongInput, clips
from tests.cues import read_cues
from tests.wer import wer

MAX_WER = 0.10


@pytest.mark.parametrize("process_type", ["full", "chunked"])
async def test_reference_route_transcribes_real_speech(
    client: AsyncTestClient[Litestar], all_clips: tuple[Path, LongInput], process_type: str
) -> None:
    path, long_input = all_clips
    response = await client.post(
        "/v1/asr/transcribe/audio",
        files={"file": (path.name, path.read_bytes(), "audio/wav")},
        data={"process_type": process_type, "request_id": f"speech-{process_type}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"text", "language", "request_id"}
    assert body["language"] == "en"
    assert body["request_id"] == f"speech-{process_type}"
    assert response.headers["x-request-id"] == f"speech-{process_type}"
    assert wer(long_input.reference, body["text"]) <= MAX_WER, body["text"]


async def test_every_clip_alone(client: AsyncTestClient[Litestar]) -> None:
    """Short files (Whisper pads them to 30 s) over the corpus: the aggregate WER."""
    references, hypotheses = [], []
    for clip in clips():
        response = await client.post(
            "/v1/asr/transcribe/audio", files={"file": (clip.path.name, clip.path.read_bytes(), "audio/wav")}
        )
        assert response.status_code == 200, response.text
        references.append(clip.reference)
        hypotheses.append(response.json()["text"])
    assert wer(" ".join(references), " ".join(hypotheses)) <= MAX_WER


@pytest.mark.parametrize("chunking", [None, "auto"])
async def test_openai_json_and_text_through_the_sdk(
    sdk: openai.AsyncOpenAI, all_clips: tuple[Path, LongInput], chunking: str | None
) -> None:
    path, long_input = all_clips
    extra = {"chunking_strategy": chunking} if chunking else {}
    as_json = await sdk.audio.transcriptions.create(model="whisper-1", file=path, **extra)  # type: ignore[call-overload]
    assert isinstance(as_json, Transcription)
    assert wer(long_input.reference, as_json.text) <= MAX_WER
    assert as_json.usage is not None
    assert as_json.usage.type == "duration"
    assert as_json.usage.seconds >= long_input.duration

    as_text = await sdk.audio.transcriptions.create(model="whisper-1", file=path, response_format="text", **extra)  # type: ignore[call-overload]
    assert isinstance(as_text, str)
    assert not as_text.lstrip().startswith("{"), "text must be the bare transcript, not JSON (vLLM's bug)"
    assert wer(long_input.reference, as_text) <= MAX_WER


@pytest.mark.parametrize("chunking", [None, "auto"])
async def test_openai_verbose_json_is_typed_and_honest(
    sdk: openai.AsyncOpenAI, all_clips: tuple[Path, LongInput], chunking: str | None
) -> None:
    path, long_input = all_clips
    extra = {"chunking_strategy": chunking} if chunking else {}
    result = await sdk.audio.transcriptions.create(
        model="whisper-1", file=path, response_format="verbose_json", **extra
    )  # type: ignore[call-overload]
    assert isinstance(result, TranscriptionVerbose)
    assert result.language == "english"
    assert result.duration == pytest.approx(long_input.duration, abs=0.01)
    assert result.words is None, "words only when asked for"
    assert result.segments
    assert wer(long_input.reference, result.text) <= MAX_WER
    previous_end = 0.0
    for segment in result.segments:
        assert 0 <= previous_end <= segment.start <= segment.end <= result.duration
        previous_end = segment.end
    assert [s.id for s in result.segments] == list(range(len(result.segments)))


async def pieces_sent(client: AsyncTestClient[Litestar]) -> float:
    """How many piece attempts the backend has run so far (the piece-time histogram's counts)."""
    text = (await client.get("/metrics")).text
    return sum(float(n) for n in re.findall(r"^asr_gateway_backend_piece_seconds_count\{.*\} (\S+)$", text, re.M))


@pytest.mark.parametrize(
    ("chunking", "pieces"),
    [
        (None, 1),  # the server default mode: full
        ("auto", 2),
        ({"type": "server_vad"}, 2),  # the SDK sends chunking_strategy[type]=server_vad
        ({"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500}, 2),
    ],
)
async def test_chunking_strategy_as_the_sdk_sends_it(
    client: AsyncTestClient[Litestar],
    sdk: openai.AsyncOpenAI,
    all_clips: tuple[Path, LongInput],
    chunking: object,
    pieces: int,
) -> None:
    """Every chunking strategy the SDK can send selects chunked mode (two pieces for this file), none full mode."""
    path, long_input = all_clips
    before = await pieces_sent(client)
    extra = {"chunking_strategy": chunking} if chunking else {}
    result = await sdk.audio.transcriptions.create(model="whisper-1", file=path, **extra)  # type: ignore[call-overload]
    assert await pieces_sent(client) - before == pieces
    assert wer(long_input.reference, result.text) <= MAX_WER


async def test_openai_verbose_json_words_when_asked(sdk: openai.AsyncOpenAI, all_clips: tuple[Path, LongInput]) -> None:
    path, long_input = all_clips
    result = await sdk.audio.transcriptions.create(
        model="whisper-1", file=path, response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
    assert result.words, "the embedded engine has real word times"
    assert wer(long_input.reference, " ".join(w.word for w in result.words)) <= MAX_WER
    previous = 0.0
    for word in result.words:
        assert previous - 0.01 <= word.start <= word.end <= result.duration
        previous = word.start
    # Each utterance's first word starts near where the utterance really starts.
    starts = [w.start for w in result.words]
    for utterance in long_input.utterances:
        nearest = min(starts, key=lambda s: abs(s - utterance.start))
        assert abs(nearest - utterance.start) < 1.0


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
@pytest.mark.parametrize("chunking", [None, "auto"])
async def test_subtitles_parse_with_independent_parsers(
    sdk: openai.AsyncOpenAI,
    all_clips: tuple[Path, LongInput],
    response_format: str,
    chunking: str | None,
) -> None:
    path, long_input = all_clips
    extra = {"chunking_strategy": chunking} if chunking else {}
    body = await sdk.audio.transcriptions.create(model="whisper-1", file=path, response_format=response_format, **extra)  # type: ignore[call-overload]
    assert isinstance(body, str)
    spans = read_cues(body, response_format)
    assert spans
    previous_end = 0.0
    for start, end, _ in spans:
        assert previous_end <= start <= end <= long_input.duration + 0.001
        previous_end = end
    assert wer(long_input.reference, " ".join(text for _, _, text in spans)) <= MAX_WER


async def test_wire_shapes(client: AsyncTestClient[Litestar], all_clips: tuple[Path, LongInput]) -> None:
    """What the SDKs do not check: verbose_json's exact keys, text's media type, a stream's usage, a language name."""
    path, long_input = all_clips
    upload = {"file": (path.name, path.read_bytes(), "audio/wav")}
    verbose = await client.post(
        "/v1/audio/transcriptions", files=upload, data={"model": "whisper-1", "response_format": "verbose_json"}
    )
    body = verbose.json()
    assert set(body) == {"task", "language", "duration", "text", "segments", "usage"}
    assert body["task"] == "transcribe"
    assert body["usage"] == {"type": "duration", "seconds": math.ceil(long_input.duration)}
    segment_keys = {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob"}
    segment_keys |= {"compression_ratio", "no_speech_prob"}
    assert all(set(s) == segment_keys for s in body["segments"])
    for response_format in ("text", "vtt", "srt"):  # all text/plain, as OpenAI sends them
        answer = await client.post("/v1/audio/transcriptions", files=upload, data={"response_format": response_format})
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"  # once (Litestar had doubled it)
    stream = await client.post("/v1/audio/transcriptions", files=upload, data={"stream": "true"})
    assert stream.headers["content-type"].startswith("text/event-stream")
    done = json.loads(stream.text.strip().splitlines()[-1].removeprefix("data: "))
    assert done["type"] == "transcript.text.done"
    assert done["usage"] == {"type": "duration", "seconds": math.ceil(long_input.duration)}
    named = await client.post("/v1/asr/transcribe/audio", files=upload, data={"language": "English"})
    assert named.status_code == 200, named.text
    assert named.json()["language"] == "en"
