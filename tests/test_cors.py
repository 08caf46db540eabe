"""Browser apps on other origins (CORS_ALLOW_ORIGINS): off by default; when set, the official OpenAI JavaScript
SDK runs in a real Chromium on an allowed page and reads answers and errors, and a page of any other origin
cannot (the browser's own CORS check, not the test's).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.settings import SettingsError, from_env
from tests.conftest import make_settings
from tests.corpus import clip
from tests.fakes import SlowBackend
from tests.node import ROOT, chromium, ensure_npm_deps, find_node
from tests.server import LiveServer, live_server
from tests.wer import wer

SPEECH = clip("ss_0870")
GOOD = clip("goforward").path
APP = "http://app.test"
KEY = "k-browser"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    # what the JS SDK sends besides the form: its key and its own headers
    "Access-Control-Request-Headers": "authorization, x-stainless-os, x-stainless-retry-count",
}


def files() -> dict[str, tuple[str, bytes, str]]:
    return {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}


@pytest.fixture(scope="module")
async def plain() -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(make_settings(), backend=SlowBackend(delay=0.01))) as client:
        yield client


@pytest.fixture(scope="module")
async def open_to_app() -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = make_settings(api_keys=(KEY,), cors_allow_origins=(APP, "https://*.example.com"))
    async with AsyncTestClient(app=create_app(settings, backend=SlowBackend(delay=0.01))) as client:
        yield client


async def test_no_cors_headers_by_default(plain: AsyncTestClient[Litestar]) -> None:
    answer = await plain.post("/v1/audio/transcriptions", files=files(), headers={"Origin": APP})
    assert answer.status_code == 200, answer.text
    preflight = await plain.options("/v1/audio/transcriptions", headers=PREFLIGHT)
    for response in (answer, preflight):
        assert not any(name.startswith("access-control-") for name in response.headers), response.headers


async def test_an_allowed_origin_is_preflighted_and_reads_answers_and_errors(
    open_to_app: AsyncTestClient[Litestar],
) -> None:
    for origin in (APP, "https://team.example.com"):
        preflight = await open_to_app.options("/v1/audio/transcriptions", headers={**PREFLIGHT, "Origin": origin})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "x-stainless-os", "x-stainless-retry-count"} <= allowed
    headers = {"Origin": APP, "Authorization": f"Bearer {KEY}"}
    answer = await open_to_app.post("/v1/asr/transcribe/audio", files=files(), headers=headers)
    refused = await open_to_app.post("/v1/audio/transcriptions", files=files(), headers={"Origin": APP})
    assert (answer.status_code, refused.status_code) == (200, 401)
    for response in (answer, refused):  # an error is readable too, so the page can say why
        assert response.headers["access-control-allow-origin"] == APP
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
        assert exposed == {"x-request-id", "retry-after", "x-asr-warning"}


async def test_another_origin_is_not_allowed(open_to_app: AsyncTestClient[Litestar]) -> None:
    for origin in ("http://evil.test", "https://example.com.evil.test", "http://app.test.evil.test"):
        preflight = await open_to_app.options("/v1/audio/transcriptions", headers={**PREFLIGHT, "Origin": origin})
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        answer = await open_to_app.post("/v1/audio/transcriptions", files=files(), headers={"Origin": origin})
        assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("value", ["app.test", "http://app.test/", "https://app.test/v1", "*.example.com"])
def test_an_origin_must_be_scheme_and_host(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^CORS_ALLOW_ORIGINS: .* is not an origin"):
        from_env({"CORS_ALLOW_ORIGINS": value})
    assert from_env({"CORS_ALLOW_ORIGINS": "*, http://localhost:5173"}).cors_allow_origins == (
        "*",
        "http://localhost:5173",
    )


# --- a real browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> tuple[str, str]:
    """Node and Chromium, with playwright-core and the openai package installed (before the server starts)."""
    node = find_node()
    path = chromium()
    ensure_npm_deps(ROOT / "tests" / "browser")
    ensure_npm_deps(ROOT / "examples" / "js")
    return node, path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # the page the script serves on http://127.0.0.1:<a free port>; not the one on http://localhost:<another>
    env = {"API_KEYS": KEY, "CORS_ALLOW_ORIGINS": "http://127.0.0.1:*"}
    with live_server(tmp_path_factory.mktemp("cors") / "server.log", env) as running:
        yield running


def test_the_js_sdk_in_a_browser_on_an_allowed_page_only(browser: tuple[str, str], server: LiveServer) -> None:
    node, chromium_path = browser
    argv = [node, str(ROOT / "tests" / "browser" / "sdk_in_browser.mjs"), "--base-url", server.base_url]
    argv += ["--sdk", str(ROOT / "examples" / "js" / "node_modules" / "openai"), "--file", str(SPEECH.path)]
    argv += ["--key", KEY, "--chromium", chromium_path]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, f"the browser script failed:\n{run.stderr}\n{run.stdout}"
    report: dict[str, Any] = json.loads(run.stdout)
    assert report["problems"] == [], report["problems"]

    allowed_origin, other_origin = report["origins"]
    assert allowed_origin.startswith("http://127.0.0.1:"), report["origins"]
    assert other_origin.startswith("http://localhost:"), report["origins"]
    allowed = report["pages"][allowed_origin]
    assert "error" not in allowed, allowed
    assert wer(SPEECH.reference, allowed["text"]) < 0.1, allowed["text"]
    assert allowed["plain"].strip() == allowed["text"]  # response_format=text: the bare transcript, a string
    assert allowed["requestId"], allowed  # an exposed header: readable by the page
    assert allowed["wrongKey"] == {"name": "AuthenticationError", "status": 401, "code": "ASR-6047"}

    other = report["pages"][other_origin]  # the browser blocks it: the SDK sees no answer at all
    assert other["error"]["name"] == "APIConnectionError", other
    assert other["error"]["status"] is None, other
    assert other["wrongKey"]["name"] == "APIConnectionError", other
    blocked = [line for line in report["console"] if "blocked by CORS policy" in line]
    assert blocked, report["console"]
    assert all(line.startswith(other_origin) for line in blocked), report["console"]
    done = [line for line in server.log().splitlines() if '"transcription done"' in line]
    assert len(done) == 2, server.log()  # the other page's requests never got past their preflight
