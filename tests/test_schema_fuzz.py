"""The OpenAPI schema against the running server, by Schemathesis: generated requests, its checks.

Schemathesis builds requests from the schema at ``/docs/openapi.json`` (valid ones, and ones that
break it: missing fields, wrong types, odd strings and names) and checks each answer: no 5xx, a
status, a body (and each streamed event) that the schema documents for the operation. Two runs:

- with the bytes it generates for ``file``: every kind of bad upload and field, refused in the
  route family's shape; schema-breaking requests must be refused too;
- with a real clip in ``file`` (``tests/schemathesis_audio.py``): the generated formats, languages,
  prompts, temperatures, granularities, chunking and streaming reach the pipeline and the renderers,
  on the embedded engine and on a real vLLM (the ``vllm`` tier).

Left out in both: "every schema-valid request succeeds" (the schema cannot say that ``file`` must be
audio, nor which languages the model knows). Left out with real audio: "every schema-breaking request
is refused", because a multipart form has no types: a ``request_id`` generated as null arrives as the
text "null", and an empty array as no field at all, both fine to accept. A fixed seed makes each run
the same every time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import LiveServer, live_server
from tests.vllm_fixtures import API_KEY, VllmServer

ROOT = Path(__file__).resolve().parents[1]
SEED = "20261121"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("fuzz") / "server.log", {"LOG_LEVEL": "INFO"}) as running:
        yield running


def run_schemathesis(server: LiveServer, cwd: Path, *, left_out: str, examples: int, env: dict[str, str]) -> int:
    """Run Schemathesis over every operation; the number of requests it made, all of which passed."""
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{server.base_url}/docs/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            left_out,
            "--max-examples",
            str(examples),
            "--seed",
            SEED,
            "--request-timeout",
            "60",
            "--no-color",
        ],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert summary is not None, run.stdout[-3000:]
    generated, passed = map(int, summary.groups())
    assert generated == passed, summary.group(0)
    operations = re.search(r"Tested: (\d+)", run.stdout)  # every operation of the schema was exercised
    assert operations is not None, run.stdout[-3000:]
    assert int(operations.group(1)) >= 6, run.stdout[-3000:]
    return generated


def counters(server: LiveServer) -> dict[tuple[str, str, str], float]:
    """The server's error counts and transcriptions, by metric, path and status."""
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as metrics:
        exposition = metrics.read().decode()
    sample = (
        r"asr_gateway_(http_errors_total|audio_duration_seconds_count)"
        r'\{path="([^"]+)"(?:,status_code="(\d+)")?\} (\S+)'
    )
    return {(name, path, status): float(value) for name, path, status, value in re.findall(sample, exposition)}


def server_errors(server: LiveServer) -> list[tuple[str, str]]:
    return [(path, status) for (name, path, status) in counters(server) if status.startswith("5")]


def still_serving(server: LiveServer) -> bool:
    with urllib.request.urlopen(server.base_url + "/healthcheck", timeout=5) as health:
        return health.status == 200


def test_generated_uploads_and_fields_get_documented_errors(server: LiveServer, tmp_path: Path) -> None:
    requests = run_schemathesis(server, tmp_path, left_out="positive_data_acceptance", examples=100, env={})
    assert requests >= 500
    refused = {status for (name, _, status) in counters(server) if name == "http_errors_total"}
    assert {"400", "415"} <= refused  # bad inputs were refused ...
    assert server_errors(server) == []  # ... and none was a server error
    assert "Traceback" not in server.log(), server.log()[-4000:]
    assert still_serving(server)


def test_generated_fields_with_real_speech_get_documented_answers(server: LiveServer, tmp_path: Path) -> None:
    with_real_speech(server, tmp_path)


@pytest.mark.vllm
def test_generated_fields_with_real_speech_on_vllm(vllm_server: VllmServer, tmp_path: Path) -> None:
    vllm_server.ensure_running()
    env = {"BACKEND": "vllm", "VLLM_BASE_URLS": vllm_server.base_url, "VLLM_API_KEY": API_KEY}
    with live_server(tmp_path / "gateway.log", {**env, "LOG_LEVEL": "INFO"}) as server:
        with_real_speech(server, tmp_path)


def with_real_speech(server: LiveServer, tmp_path: Path) -> None:
    """The run with a real clip as the file: both families transcribe, nothing is a 5xx or off the schema."""
    before = counters(server)
    requests = run_schemathesis(
        server,
        tmp_path,
        left_out="positive_data_acceptance,negative_data_rejection",
        examples=50,
        env={"PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.schemathesis_audio"},
    )
    assert requests >= 500
    after = counters(server)
    done = [key for key in after if key[0] == "audio_duration_seconds_count"]
    transcribed = {key[1]: after[key] - before.get(key, 0.0) for key in done}
    # the clip reached the pipeline on both route families (translation: tiny.en cannot, a 400)
    assert transcribed.get("/v1/asr/transcribe/audio", 0) >= 10, transcribed
    assert transcribed.get("/v1/audio/transcriptions", 0) >= 10, transcribed
    assert server_errors(server) == []
    assert "Traceback" not in server.log(), server.log()[-4000:]
    assert still_serving(server)
