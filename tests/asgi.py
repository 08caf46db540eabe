"""One POST straight through an ASGI app, in the caller's loop: no sockets, no test client's own loop."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Litestar

CHUNK = 65536  # the body arrives in pieces, as uvicorn hands it over


async def post_form(
    app: Litestar, path: str, content_type: str, body: bytes, *, gone_after: int | None = None
) -> tuple[int, bytes]:
    """The status and body of one POST; the client stays connected until the response is sent, or until it
    has sent ``gone_after`` pieces of the body, when it disconnects mid-upload."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-type", content_type.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    sent_chunks: list[bytes] = []
    answered = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if gone_after is not None and len(sent_chunks) == gone_after:
            return {"type": "http.disconnect"}
        if chunks:
            sent_chunks.append(chunks[0])
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])
