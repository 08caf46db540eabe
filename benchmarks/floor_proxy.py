"""The least a Python gateway can do between a client and vLLM: ``bench_vllm --floor`` measures it.

    python -m benchmarks.floor_proxy  (HOST, PORT, VLLM_BASE_URLS, VLLM_MEDIA_DIR from the environment)

A bare ASGI app on uvicorn (uvloop, httptools), as the gateway runs: it reads the upload,
takes the first multipart part's bytes as the WAV (no checks, no decoding, no plan), writes
them to the shared folder, asks vLLM's chat route for that file with one plain
``aiohttp`` POST, and answers ``{"text": ...}``. What it adds over calling vLLM directly is
the cost of the second HTTP exchange itself on this machine: the floor under the gateway's
own figure, in the same run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_TAG = "<asr_text>"
MODEL = "tiny-asr"  # the name bench_vllm serves the tiny checkpoint under (not imported: keep this process bare)


class FloorProxy:
    """The ASGI app. ``/healthcheck`` answers 200; every POST is one transcription."""

    def __init__(self, vllm: str, media: Path) -> None:
        self._vllm = vllm.rstrip("/") + "/chat/completions"
        self._media = media
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["method"] != "POST":
            await self._answer(send, 200, b"{}")
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        boundary = body[: body.index(b"\r\n")]
        start = body.index(b"\r\n\r\n") + 4
        wav = body[start : body.index(b"\r\n" + boundary, start)]
        fd, path = tempfile.mkstemp(suffix=".wav", dir=self._media)
        try:
            os.write(fd, wav)
            os.close(fd)
            request = {
                "model": MODEL,
                "messages": [
                    {"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": "file://" + path}}]}
                ],
                "temperature": 0.0,
            }
            assert self._session is not None
            async with self._session.post(
                self._vllm, data=msgspec.json.encode(request), headers={"Content-Type": "application/json"}
            ) as response:
                answer = msgspec.json.decode(await response.read())
        finally:
            os.unlink(path)
        raw: str = answer["choices"][0]["message"]["content"] or ""
        text = raw.split(_TAG, 1)[1] if _TAG in raw else raw
        await self._answer(send, 200, msgspec.json.encode({"text": text.strip()}))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._session = aiohttp.ClientSession()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._session is not None:
                    await self._session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    app = FloorProxy(os.environ["VLLM_BASE_URLS"], Path(os.environ["VLLM_MEDIA_DIR"]))
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ["PORT"]),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        timeout_keep_alive=75,  # as the gateway (KEEP_ALIVE_SECONDS)
        log_level="warning",
    )


if __name__ == "__main__":
    main()
