"""The Swagger page in a real browser: a person uploads a real clip with "Try it out" and reads the transcript.

Headless Chromium (Debian's) is driven by playwright-core under Node (tests/browser/upload_via_swagger.mjs):
open /docs, expand the operation, "Try it out", choose tests/data/speech/ss_0870.wav in the file input,
pick the mode / format, "Execute", and read the status and the response body from the page. Screenshots of
each (from the chosen file down to the response) are saved as test-artifacts/swagger-reference.png and
test-artifacts/swagger-openai.png. The gateway serves Swagger UI's files and the page's icon itself: a
request the page makes to any other host is aborted and fails the test.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.corpus import clip
from tests.node import ROOT, chromium, ensure_npm_deps, find_node
from tests.server import LiveServer, live_server
from tests.wer import wer

SPEECH = clip("ss_0870")
BROWSER = ROOT / "tests" / "browser"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> tuple[str, str]:
    """Node and Chromium, with tests/browser's npm packages installed (before the server starts)."""
    node = find_node()
    path = chromium()
    ensure_npm_deps(BROWSER)
    return node, path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Server defaults of its own: the page must not send defaults written into the schema in their place.
    env = {"DEFAULT_PROCESS_TYPE": "chunked", "MODEL_ALIASES": "house-asr"}
    with live_server(tmp_path_factory.mktemp("docs-browser") / "server.log", env) as running:
        yield running


def test_upload_through_swagger_try_it_out(browser: tuple[str, str], server: LiveServer) -> None:
    node, chromium_path = browser
    ARTIFACTS.mkdir(exist_ok=True)
    for name in ("swagger-reference.png", "swagger-openai.png"):
        (ARTIFACTS / name).unlink(missing_ok=True)
    argv = [node, str(BROWSER / "upload_via_swagger.mjs"), "--base-url", server.base_url]
    argv += ["--file", str(SPEECH.path), "--out", str(ARTIFACTS), "--chromium", chromium_path]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, f"the browser script failed:\n{run.stderr}\n{run.stdout}"
    report: dict[str, Any] = json.loads(run.stdout)

    assert report["problems"] == [], report["problems"]
    assert report["blocked"] == [], report["blocked"]  # the page asks nothing of another host
    results = {r["operation"]: r for r in report["results"]}
    assert set(results) == {"/v1/asr/transcribe/audio", "/v1/audio/transcriptions"}
    for result in results.values():
        assert result["requestUrl"] == server.base_url + result["operation"]
        png = (ARTIFACTS / result["screenshot"]).read_bytes()
        assert png.startswith(b"\x89PNG"), result["screenshot"]

    reference = results["/v1/asr/transcribe/audio"]
    assert reference["status"] == 200, reference["body"]
    body = json.loads(reference["body"])
    assert set(body) == {"text", "language", "request_id"}
    assert body["language"] == "en"
    assert wer(SPEECH.reference, body["text"]) < 0.1, body["text"]

    openai_route = results["/v1/audio/transcriptions"]  # response_format=text: the page shows the bare transcript
    assert openai_route["status"] == 200, openai_route["body"]
    assert not openai_route["body"].lstrip().startswith("{")
    assert wer(SPEECH.reference, openai_route["body"]) < 0.1, openai_route["body"]

    # Fields left untouched on the page take the server's defaults (DEFAULT_PROCESS_TYPE=chunked here).
    done = [json.loads(line) for line in server.log().splitlines() if '"transcription done"' in line]
    assert [e["mode"] for e in done] == ["chunked", "chunked"]
