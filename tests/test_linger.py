"""Refusals sent while the client is still uploading reach the client (``gateway.linger``), on a real server.

Clients that write the whole body before reading (the openai SDK's ``AsyncOpenAI``, ``httpx.AsyncClient``)
got "Connection error" instead of the 413 when the server closed with the upload's rest unread: the
kernel's reset destroyed the answer. These tests fail that way without the linger.
"""

from __future__ import annotations

import asyncio
import io
import select
import socket
import time
import wave

import httpx
import openai
import pytest

from gateway.linger import LINGER_SECONDS
from tests.server import LiveServer, live_server

LIMIT_MB = 32  # room for a text field big enough that the socket's buffers do not hold its rest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with live_server(tmp_path_factory.mktemp("linger") / "server.log", {"MAX_UPLOAD_MB": str(LIMIT_MB)}) as running:
        yield running


def wav(seconds: int) -> bytes:
    """A 16 kHz mono WAV of ``seconds`` (32 kB a second): its size is what matters here."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\x01\x00" * 16000 * seconds)
    return out.getvalue()


def test_the_async_sdk_reads_the_413_of_an_upload_over_the_limit(server: LiveServer) -> None:
    over = wav(2 * LIMIT_MB * 32)  # twice the limit

    async def attempts() -> list[openai.APIStatusError]:
        client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        refusals = []
        for _ in range(3):
            with pytest.raises(openai.APIStatusError) as refused:
                await client.audio.transcriptions.create(model="whisper-1", file=("long.wav", over))
            refusals.append(refused.value)
        await client.close()
        return refusals

    for refusal in asyncio.run(attempts()):
        assert refusal.status_code == 413
        assert refusal.body == {
            "message": f"The upload is larger than the limit of {LIMIT_MB} MB.",
            "type": "invalid_request_error",
            "param": "file",
            "code": "ASR-6046",
        }
        assert refusal.response.headers["connection"] == "close"


def test_an_async_client_reads_the_reference_routes_413(server: LiveServer) -> None:
    over = wav(2 * LIMIT_MB * 32)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(timeout=60) as client:
            return await client.post(
                server.base_url + "/v1/asr/transcribe/audio",
                files={"file": ("long.wav", over)},
                headers={"X-Request-ID": "too-long"},
            )

    response = asyncio.run(post())
    assert response.status_code == 413
    assert response.json() == {
        "error": f"The upload is larger than the limit of {LIMIT_MB} MB.",
        "code": "ASR-6046",
        "request_id": "too-long",
    }
    assert httpx.get(server.base_url + "/healthcheck", timeout=30).status_code == 200


def test_text_over_its_limit_is_refused_readably_mid_body(server: LiveServer) -> None:
    prompt = "word " * (20 * 2**20 // 5)  # 20 MiB of text: under the upload limit, over the text fields' 1 MiB

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(timeout=60) as client:
            return await client.post(
                server.base_url + "/v1/audio/transcriptions",
                data={"model": "whisper-1", "prompt": prompt},
                files={"file": ("short.wav", wav(1))},
            )

    response = asyncio.run(post())
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["param"] == "prompt"
    assert "text fields hold over 1 MiB" in error["message"]


def test_a_client_that_keeps_sending_is_cut_off_after_the_linger(server: LiveServer) -> None:
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 900000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"--b\r\n")
        reply = b""
        while b'"code"' not in reply:  # the whole refusal arrives while the body is still being sent
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 413"), reply
        answered = time.monotonic()
        closed = False
        while not closed and time.monotonic() - answered < LINGER_SECONDS + 30:
            try:
                sock.sendall(b"x" * 1024)  # a slow upload that would never end
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    closed = sock.recv(65536) == b""
                except ConnectionResetError:
                    closed = True
        assert closed, "the server kept reading a body it had refused"
    assert httpx.get(server.base_url + "/healthcheck", timeout=30).status_code == 200


def test_a_client_waiting_for_100_continue_gets_the_refusal_not_an_invitation(server: LiveServer) -> None:
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 900000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode())  # and nothing more: curl waits for 100 Continue or an answer
        reply = b""
        while chunk := sock.recv(65536):  # to the server's close: a 100 Continue would come after the answer
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert b"100 Continue" not in reply
    assert b'"code":"ASR-6046"' in reply
