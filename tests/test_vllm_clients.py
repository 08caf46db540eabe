"""The official clients against the gateway on a real vLLM: the sync Python SDK and the JavaScript SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
import srt
import webvtt
from openai.types.audio import Transcription, TranscriptionVerbose

from tests.corpus import clip
from tests.node import ensure_npm_deps, find_node
from tests.server import LiveServer, live_server
from tests.test_js_sdk import JS_EXAMPLE, run_example
from tests.vllm_fixtures import API_KEY, SERVED_NAME, VllmServer

pytestmark = pytest.mark.vllm

SPEECH = clip("ss_0870")
HELLO = "hello world"


@pytest.fixture(scope="module")
def gateway(vllm_server: VllmServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    vllm_server.ensure_running()
    env = {
        "BACKEND": "vllm",
        "VLLM_BASE_URLS": vllm_server.base_url,
        "VLLM_API_KEY": API_KEY,
        "VLLM_HEALTH_INTERVAL_SECONDS": "0.5",
    }
    with live_server(tmp_path_factory.mktemp("vllm-clients") / "gateway.log", env) as running:
        yield running


def test_sync_python_sdk_every_format(gateway: LiveServer) -> None:
    sdk = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0)
    as_json = sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path)
    assert isinstance(as_json, Transcription)
    assert as_json.text == HELLO
    text = sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path, response_format="text")
    assert isinstance(text, str)
    assert text.strip() == HELLO
    verbose = sdk.audio.transcriptions.create(model=SERVED_NAME, file=SPEECH.path, response_format="verbose_json")
    assert isinstance(verbose, TranscriptionVerbose)
    assert verbose.language == "english"
    assert verbose.segments
    assert verbose.words is None
    subtitles = sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path, response_format="srt")
    assert [c.content for c in srt.parse(subtitles)] == [HELLO]
    vtt = sdk.audio.transcriptions.create(model="whisper-1", file=SPEECH.path, response_format="vtt")
    assert [c.text for c in webvtt.from_string(vtt)] == [HELLO]
    assert [m.id for m in sdk.models.list()] == [SERVED_NAME, "whisper-1"]


def test_javascript_sdk(gateway: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    node = find_node()
    ensure_npm_deps(JS_EXAMPLE)
    monkeypatch.setenv("TIMESTAMP_GRANULARITIES", "segment")  # Qwen3-ASR has no word times
    out = run_example([node, "examples/js/transcribe.mjs", str(SPEECH.path)], gateway)
    assert json.loads(out["json"])["text"] == HELLO
    assert out["text"].strip() == HELLO
    verbose = json.loads(out["verbose_json"])
    assert verbose["language"] == "english"
    assert verbose["segments"]
    assert "words" not in verbose
    assert [s.content for s in srt.parse(out["srt"])] == [HELLO]
    events = [json.loads(line) for line in out["stream"].splitlines()]
    assert events[-1]["type"] == "transcript.text.done"
    assert events[-1]["text"] == HELLO
    reference = json.loads(out["reference"])
    assert reference["text"] == HELLO
    assert reference["language"] == "en"
