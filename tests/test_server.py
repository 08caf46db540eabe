"""The server as a user starts it: the console script, ``python -m gateway``, the examples, real sockets."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from gateway.logs import JsonFormatter
from tests.corpus import clip
from tests.server import live_server

ROOT = Path(__file__).resolve().parent.parent
SPEECH = clip("ss_0870").path


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with live_server(tmp_path_factory.mktemp("server") / "server.log") as running:
        yield running


def test_console_script_serves_and_the_examples_work(server) -> None:  # type: ignore[no-untyped-def]
    env = {"BASE_URL": server.base_url, "PATH": "/usr/bin:/bin"}
    curl = subprocess.run(
        ["bash", "examples/curl.sh", str(SPEECH)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert curl.returncode == 0, curl.stderr
    assert '"request_id":"example-1"' in curl.stdout
    assert '"request_id":"example-2"' in curl.stdout
    assert re.search(r"^1\n00:00:00,\d{3} --> 00:00:0\d,\d{3}$", curl.stdout, re.MULTILINE)  # srt's first cue
    assert "WEBVTT" in curl.stdout
    assert '"words":[' in curl.stdout
    assert curl.stdout.count("Dashwood") >= 7

    sdk = subprocess.run(
        [sys.executable, "examples/openai_sdk.py", str(SPEECH)],
        cwd=ROOT,
        env={"BASE_URL": server.base_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sdk.returncode == 0, sdk.stderr
    assert "verbose_json: language=english duration=7.1" in sdk.stdout
    assert "json: And Mr. John Dashwood" in sdk.stdout


def test_logs_are_json_lines_with_request_ids(server) -> None:  # type: ignore[no-untyped-def]
    events = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    done = [e for e in events if e["event"] == "transcription done"]
    assert done
    assert all(e["request_id"] for e in done)
    assert {"route", "mode", "audio_seconds", "pieces", "timings", "error_code"} <= set(done[0])
    assert any(e["request_id"] == "example-1" for e in done)
    assert any(e["event"] == "piece done" and e["request_id"] == "example-2" for e in events)


def test_an_idle_connection_outlives_the_clients_own_idle_limit(server) -> None:  # type: ignore[no-untyped-def]
    # httpx and Node's agent reuse a connection idle for up to 5 s; uvicorn's own default closes it at 5 s,
    # so a request sent at that moment met a closed socket ("Server disconnected", ECONNRESET).
    address = urllib.parse.urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", "/healthcheck")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        used = connection.sock
        time.sleep(6)
        connection.request("GET", "/healthcheck")
        again = connection.getresponse()  # RemoteDisconnected if the server had closed it
        again.read()
        assert again.status == 200
        assert connection.sock is used
    finally:
        connection.close()


def test_python_dash_m_and_root_path(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "gateway", "serve", "--root-path", "/internal/asr", "--log-format", "text"]
    with live_server(tmp_path / "log", command=command, health_path="/internal/asr/healthcheck") as running:
        status, body = get(running.base_url + "/internal/asr/docs")
        assert status == 200
        assert b"swagger" in body.lower()
        status, body = get(running.base_url + "/internal/asr/docs/openapi.json")
        assert status == 200
        assert "/internal/asr/v1/audio/transcriptions" in json.loads(body)["paths"]
        assert get(running.base_url + "/healthcheck")[0] == 404
        port = str(running.port)
        check = [sys.executable, "-m", "gateway", "healthcheck", "--port", port]  # the image's HEALTHCHECK
        # Docker hands a client's proxy to containers: a proxy cannot reach the container's loopback
        proxied = {**os.environ, "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
        healthy = subprocess.run(
            [*check, "--root-path", "/internal/asr"], capture_output=True, text=True, timeout=30, env=proxied
        )
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "/internal/asr/healthcheck: 200" in healthy.stdout
        outside = subprocess.run(check, capture_output=True, text=True, timeout=30)  # no root path: a 404
        assert outside.returncode == 1, outside.stdout + outside.stderr
        text_lines = [line for line in running.log().splitlines() if "embedded model loaded" in line]
        assert text_lines
        assert not text_lines[0].startswith("{")


def test_bad_setting_stops_start_up_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--port", "eighty"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "PORT:" in result.stderr


def test_over_size_upload_is_refused_before_the_body_is_sent(tmp_path: Path) -> None:
    with live_server(tmp_path / "log", {"MAX_UPLOAD_MB": "1"}) as running:
        port = running.port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head = (
                "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 900000000\r\n\r\n"
            )
            sock.sendall(head.encode())  # and not one byte of the 900 MB body
            reply = ""
            while '"code"' not in reply:
                chunk = sock.recv(65536).decode(errors="replace")
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith("HTTP/1.1 413"), reply
        assert '"code":"ASR-6046"' in reply
        assert get(running.base_url + "/healthcheck")[0] == 200


def test_one_failure_event_per_request(server) -> None:  # type: ignore[no-untyped-def]
    import httpx

    response = httpx.post(
        server.base_url + "/v1/asr/transcribe/audio",
        files={"file": ("x.mp3", b"not audio" * 100)},
        headers={"X-Request-ID": "one-failure"},
        timeout=30,
    )
    assert response.status_code == 415
    bad_field = httpx.post(
        server.base_url + "/v1/asr/transcribe/audio",
        files={"file": ("x.wav", SPEECH.read_bytes())},
        data={"process_type": "later"},
        headers={"X-Request-ID": "bad-field"},
        timeout=30,
    )
    assert bad_field.status_code == 400
    events = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    for request_id in ("one-failure", "bad-field"):
        failures = [e for e in events if e["request_id"] == request_id and "failed" in e["event"]]
        assert len(failures) == 1, failures
        assert failures[0]["error_code"] in ("ASR-6041", "ASR-6045")


def failed_start(tmp_path: Path, env: dict[str, str]) -> str:
    """The log of a server that must refuse to start."""
    with pytest.raises(RuntimeError, match="exited with 3") as failure, live_server(tmp_path / "server.log", env):
        pass
    return str(failure.value)


def failed_on_a_taken_port(tmp_path: Path, variable: str) -> tuple[int, str]:
    """A port another socket listens on, and the log of a server told to use it as ``variable``."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        return port, failed_start(tmp_path, {variable: str(port)})


def test_a_metrics_port_in_use_is_named_with_what_to_do(tmp_path: Path) -> None:
    port, log = failed_on_a_taken_port(tmp_path, "METRICS_PORT")
    assert f"cannot start: METRICS_PORT={port}: cannot listen on 127.0.0.1:{port} (Address already in use)" in log
    assert "or 0 to serve /metrics on the API port" in log
    assert "embedded model loaded" not in log, "refused before the model loads"
    assert "Traceback" not in log, log


def test_an_api_port_in_use_is_named_before_the_model_loads(tmp_path: Path) -> None:
    port, log = failed_on_a_taken_port(tmp_path, "PORT")
    assert f"cannot start: PORT={port}: cannot listen on 127.0.0.1:{port} (Address already in use)" in log
    assert "embedded model loaded" not in log


def test_a_default_language_the_model_cannot_do_stops_start_up(tmp_path: Path) -> None:
    """tiny.en with DEFAULT_LANGUAGE=fr would answer 400 to every request that names no language."""
    log = failed_start(tmp_path, {"DEFAULT_LANGUAGE": "French"})
    why = "the model 'whisper-tiny.en' cannot transcribe it; it knows: en."
    assert f"cannot start: DEFAULT_LANGUAGE=French: {why}" in log
    unknown = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--default-language", "Klingon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2
    assert "DEFAULT_LANGUAGE: 'Klingon' is not a known ISO 639-1 code or language name" in unknown.stderr


@pytest.mark.parametrize(
    ("model", "why"),
    [
        ("/no/such/model", "no such directory"),
        (str(ROOT / "tests"), "not a CTranslate2 model directory (it has no model.bin)"),
        ("tiny-nope", "not a model directory, and not a model name that could be fetched"),
    ],
)
def test_a_model_that_cannot_load_is_named_with_why(tmp_path: Path, model: str, why: str) -> None:
    log = failed_start(tmp_path, {"EMBEDDED_MODEL": model})
    assert f"cannot start: EMBEDDED_MODEL={model}: {why}" in log


def test_a_json_log_line_is_one_object_whatever_its_fields_hold() -> None:
    """Fields the standard JSON encoder refuses still make one parseable line (as their str()),
    and a NaN, which it would write as invalid JSON, is null."""
    record = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, "event %s", ("x",), None)
    record.__dict__.update({"request_id": "r1", "odd": {(1, 2): object()}, "ratio": float("nan"), "n": 2**70})
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "event x"
    assert line["request_id"] == "r1"
    assert list(line["odd"]) == ["(1, 2)"]
    assert line["odd"]["(1, 2)"].startswith("<object object")
    assert line["ratio"] is None
    assert line["n"] == 2**70
