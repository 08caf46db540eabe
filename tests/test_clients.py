"""Real clients as their users call the gateway: the sync and async OpenAI SDKs, streaming, n8n's exact request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import srt
from openai.types.audio import Transcription, TranscriptionVerbose

from tests.corpus import LongInput, build_long_input, clip, write_wav
from tests.formdata import multipart
from tests.server import LiveServer, live_server
from tests.wer import wer

SPEECH = clip("ss_0870")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("clients") / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def sync_sdk(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def two_minutes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LongInput]:
    long_input = build_long_input(140, seed=21)
    return write_wav(tmp_path_factory.mktemp("stream") / "speech.wav", long_input.samples), long_input


def test_sync_sdk_every_format(sync_sdk: openai.OpenAI) -> None:
    as_json = sync_sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path)
    assert isinstance(as_json, Transcription)
    assert wer(SPEECH.reference, as_json.text) < 0.1
    text = sync_sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path, response_format="text")
    assert isinstance(text, str)
    assert text.strip() == as_json.text
    verbose = sync_sdk.audio.transcriptions.create(
        model="whisper-1", file=SPEECH.path, response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert isinstance(verbose, TranscriptionVerbose)
    assert verbose.language == "english"
    assert isinstance(verbose.duration, float)
    assert verbose.words
    subtitles = sync_sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path, response_format="srt")
    assert list(srt.parse(subtitles))
    vtt = sync_sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path, response_format="vtt")
    assert vtt.startswith("WEBVTT")


@pytest.mark.parametrize(
    ("granularities", "keys"),
    [
        ([], {"segments"}),  # none asked for: segment, OpenAI's default
        (["segment"], {"segments"}),
        (["word"], {"words"}),  # OpenAI's one exception: word alone leaves segments out
        (["word", "segment"], {"words", "segments"}),
        (["segment", "word"], {"words", "segments"}),
    ],
)
def test_verbose_json_has_what_the_granularities_ask_for_as_on_openai(
    sync_sdk: openai.OpenAI, granularities: list[str], keys: set[str]
) -> None:
    """OpenAI's own answers to each combination, as speaches' tests against its API record them
    (tests/openai_timestamp_granularities_test.py in speaches-ai/speaches)."""
    raw = sync_sdk.audio.transcriptions.with_raw_response.create(
        model="whisper-1",
        file=SPEECH.path,
        response_format="verbose_json",
        timestamp_granularities=granularities,  # type: ignore[arg-type]
    )
    body = raw.http_response.json()
    assert {"words", "segments"} & body.keys() == keys
    for key in keys:
        assert body[key], key


@pytest.mark.parametrize("granularities", [[], ["segment"]])
def test_json_takes_segment_granularity_as_openai_does(sync_sdk: openai.OpenAI, granularities: list[str]) -> None:
    plain = sync_sdk.audio.transcriptions.create(
        model="whisper-1",
        file=SPEECH.path,
        response_format="json",
        timestamp_granularities=granularities,  # type: ignore[arg-type]
    )
    assert wer(SPEECH.reference, plain.text) < 0.1


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt"])
def test_word_times_need_verbose_json_as_on_openai(sync_sdk: openai.OpenAI, response_format: str) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        sync_sdk.audio.transcriptions.create(
            model="whisper-1",
            file=SPEECH.path,
            response_format=response_format,  # type: ignore[arg-type]
            timestamp_granularities=["word", "segment"],
        )
    assert error.value.body["param"] == "timestamp_granularities[]"  # type: ignore[index]


def test_models_in_openai_shape(sync_sdk: openai.OpenAI) -> None:
    ids = [m.id for m in sync_sdk.models.list()]
    assert ids[0] == "whisper-tiny.en"
    assert "whisper-1" in ids
    assert sync_sdk.models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError) as error:
        sync_sdk.models.retrieve("gpt-5-ears")
    assert error.value.body["code"] == "ASR-6048"  # type: ignore[index]


def test_a_model_id_with_a_slash_is_found(tmp_path: Path) -> None:
    """Hub-style ids (a vLLM serving ``Qwen/Qwen3-ASR-1.7B``, an alias): the SDK sends the slash as %2F."""
    hub_id = "Systran/faster-whisper-tiny.en"
    with live_server(tmp_path / "log", {"MODEL_ALIASES": f"whisper-1,{hub_id}"}) as server:
        sdk = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
        assert hub_id in [m.id for m in sdk.models.list()]
        assert sdk.models.retrieve(hub_id).id == hub_id
        plain = httpx.get(f"{server.base_url}/v1/models/{hub_id}")  # curl's way: the slash as it is
        assert (plain.status_code, plain.json()["id"]) == (200, hub_id)
        with pytest.raises(openai.NotFoundError):
            sdk.models.retrieve("Systran/faster-whisper-huge")
        text = sdk.audio.transcriptions.create(model=hub_id, file=SPEECH.path, response_format="text")
        assert wer(SPEECH.reference, text) < 0.1


def test_translation_is_refused_where_the_model_cannot(sync_sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as error, pytest.deprecated_call():  # the SDK deprecates translations
        sync_sdk.audio.translations.create(model="whisper-1", file=SPEECH.path)
    body = error.value.body
    assert body["type"] == "invalid_request_error"  # type: ignore[index]
    assert "cannot translate" in body["message"]  # type: ignore[index]


async def test_streaming_with_the_async_sdk(tmp_path: Path, two_minutes: tuple[Path, LongInput]) -> None:
    """Pieces stream as they finish, in order.

    One lane taking two windows a step, so that the first pieces finish first: with a lane per core,
    which lane's pieces finish first is a race (pieces 2 and 3 before 0, 1 and 4, seen once).
    """
    path, long_input = two_minutes
    with live_server(tmp_path / "log", {"EMBEDDED_WORKERS": "1", "EMBEDDED_BATCH_SIZE": "2"}) as server:
        await _stream_and_check(server, path, long_input)


async def _stream_and_check(server: LiveServer, path: Path, long_input: LongInput) -> None:
    sdk = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
    started = time.monotonic()
    stream = await sdk.audio.transcriptions.create(
        model="whisper-1", file=path, stream=True, extra_body={"chunking_strategy": "auto"}
    )
    deltas: list[tuple[float, str]] = []
    done = None
    async for event in stream:
        if event.type == "transcript.text.delta":
            deltas.append((time.monotonic() - started, event.delta))
        elif event.type == "transcript.text.done":
            done = event
            finished = time.monotonic() - started
    assert done is not None
    assert len(deltas) >= 3, "one delta per piece"
    assert "".join(d for _, d in deltas) == done.text, "the deltas joined are the text, spaces and all"
    assert wer(long_input.reference, done.text) < 0.1
    assert deltas[0][0] < 0.8 * finished, "the first text arrives before the whole file is done"


async def test_stream_errors_before_it_starts_are_plain_errors(server: LiveServer) -> None:
    sdk = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as error:
        await sdk.audio.transcriptions.create(model="whisper-1", file=("x.mp3", b"not audio" * 50), stream=True)
    assert error.value.status_code == 415
    assert error.value.body["code"] == "ASR-6041"  # type: ignore[index]


def test_n8n_openai_node_request_replayed(server: LiveServer, tmp_path: Path, ffmpeg: str) -> None:
    """n8n posts model=whisper-1 first, language/temperature only when set, then the file; no response_format."""
    import subprocess

    mp3 = tmp_path / "voice-message.mp3"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(SPEECH.path), str(mp3)], check=True)
    for fields in ([("model", "whisper-1")], [("model", "whisper-1"), ("language", "en"), ("temperature", "0.2")]):
        content_type, body = multipart([*fields, ("file", (mp3.name, "audio/mpeg", mp3.read_bytes()))])
        response = httpx.post(
            server.base_url + "/v1/audio/transcriptions",
            content=body,
            headers={
                "content-type": content_type,
                "authorization": "Bearer sk-n8n-credential",
                "accept": "application/json,text/html,application/xhtml+xml,application/xml,text/*;q=0.9, */*;q=0.1",
                "user-agent": "n8n",
            },
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        body_json = response.json()
        assert set(body_json) == {"text", "usage"}
        assert wer(SPEECH.reference, body_json["text"]) < 0.1
