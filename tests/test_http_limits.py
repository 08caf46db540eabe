"""The HTTP server's bounds on a client (``gateway.http_protocol``), on a real server over real sockets.

Without them, one client sending a header that never ends stalled every route and held every byte,
and a client that stopped in the middle of an upload held its connection and spooled file for good.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.http_protocol import HEAD_LIMIT
from tests.corpus import clip
from tests.server import LiveServer, live_server

READ_TIMEOUT = 2  # seconds, for the test's server (the default is 60)
UPLOAD = (
    b"POST /v1/asr/transcribe/audio HTTP/1.1\r\nHost: x\r\nX-Request-ID: stalled-upload\r\n"
    b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 4000000\r\n\r\n"
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("limits") / "server.log"
    with live_server(log, {"READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)}) as running:
        yield running


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT + 20)


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset after its answer counts as the close)."""
    reply = b""
    try:
        while chunk := sock.recv(65536):
            reply += chunk
    except ConnectionResetError:
        pass
    return reply


def json_body(reply: bytes) -> dict[str, object]:
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


def spooled_files(pid: int) -> int:
    """The server's open files that were deleted on creation: spooled uploads."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).endswith("(deleted)"))


def test_a_header_that_never_ends_is_refused_and_the_server_keeps_serving(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        sent = 0
        try:
            while sent < 100 * HEAD_LIMIT:  # without the bound, all of it is taken in, and more would be
                sock.sendall(b"a" * 8192)
                sent += 8192
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_to_close(sock)
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply[:200]
    assert json_body(reply) == {
        "error": {
            "message": "The request's headers are over 64 KiB.",
            "type": "invalid_request_error",
            "param": None,
            "code": "ASR-6045",
        }
    }
    assert sent < 100 * HEAD_LIMIT
    assert httpx.get(server.base_url + "/healthcheck", timeout=30).status_code == 200


def test_a_stalled_upload_is_ended_with_a_408_and_its_file_freed(server: LiveServer) -> None:
    before = spooled_files(server.process.pid)
    with connect(server) as sock:
        sock.sendall(UPLOAD + b"x" * 2_000_000)  # over the 1 MiB kept in memory: spooled to a file
        deadline = time.monotonic() + 10
        while spooled_files(server.process.pid) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spooled_files(server.process.pid) == before + 1  # then the client stops sending
        reply = read_to_close(sock)
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), reply[:200]
    assert b"\r\nx-request-id: stalled-upload\r\n" in reply
    assert json_body(reply) == {
        "error": f"The request stopped arriving: nothing came for {READ_TIMEOUT} s.",
        "code": "ASR-6045",
        "request_id": "stalled-upload",
    }
    deadline = time.monotonic() + 10
    while spooled_files(server.process.pid) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spooled_files(server.process.pid) == before
    # counted and logged as the 408 it was answered, not as the disconnect the app saw
    errors = route_errors(server, "/v1/asr/transcribe/audio")
    assert errors == {"408": 1}
    assert '"event":"request ended by the server"' in server.log()
    assert '"event":"client disconnected"' not in server.log()


def route_errors(server: LiveServer, path: str) -> dict[str, float]:
    """The route's error counts by status, from the server's /metrics."""
    text = httpx.get(server.base_url + "/metrics", timeout=30).text
    return {
        sample.labels["status_code"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.endswith("_errors_total") and sample.labels.get("path") == path
    }


def test_a_stalled_head_is_ended_with_a_408_in_the_openai_shape(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n")
        reply = read_to_close(sock)
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), reply[:200]
    assert json_body(reply)["error"] == {
        "message": f"The request stopped arriving: nothing came for {READ_TIMEOUT} s.",
        "type": "invalid_request_error",
        "param": None,
        "code": "ASR-6045",
    }


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server: LiveServer) -> None:
    with connect(server) as sock:
        assert read_to_close(sock) == b""


def test_an_upload_slower_than_the_timeout_between_its_parts_is_not_cut(server: LiveServer) -> None:
    request = httpx.Request(
        "POST",
        server.base_url + "/v1/audio/transcriptions",
        files={"file": ("speech.wav", clip("ss_0870").path.read_bytes())},
        data={"model": "whisper-1"},
    )
    body = request.read()

    def trickle() -> Iterator[bytes]:  # four parts, a pause under the timeout before each
        part = len(body) // 4 + 1
        for start in range(0, len(body), part):
            time.sleep(READ_TIMEOUT * 0.6)
            yield body[start : start + part]

    response = httpx.post(
        request.url, content=trickle(), headers={"Content-Type": request.headers["Content-Type"]}, timeout=60
    )
    assert response.status_code == 200, response.text
    assert "Dashwood" in response.json()["text"]


def test_an_idle_connection_between_requests_costs_no_cpu(server: LiveServer) -> None:
    """Idle after an answer, a connection is uvicorn's keep-alive's (75 s), not the read timeout's: no busy wait."""

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def health(sock: socket.socket) -> bytes:
        sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while not reply.endswith(b'{"status":"ok"}'):  # the head and the body may come apart
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
        return reply

    with connect(server) as sock:
        assert health(sock).startswith(b"HTTP/1.1 200")
        time.sleep(READ_TIMEOUT + 0.5)  # the stall check has come round once with nothing owed
        before = cpu_seconds()
        time.sleep(2)
        spent = cpu_seconds() - before
        assert health(sock).startswith(b"HTTP/1.1 200")  # and the connection still serves
    assert spent < 0.5, f"the server spent {spent:.2f} s of CPU in 2 s with one idle connection"
