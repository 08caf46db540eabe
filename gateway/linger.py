"""A refusal sent before the request's body ended, kept readable: the rest of the body is read and dropped.

The gateway refuses some requests while the client is still sending (an upload over the limit, text
fields over theirs) and says ``Connection: close`` (``UNREAD``), so as not to read a body of any size
to its end. Closing a socket that still holds unread bytes makes the kernel reset the connection, and
the reset can destroy the answer before the client has read it: clients that send the whole body
before reading (the openai SDK's ``AsyncOpenAI``, ``httpx.AsyncClient``) got "Connection error" instead
of the 413. So, as nginx does (its ``lingering_close``), the refusal is written whole first, then the
rest of the body is read and dropped for at most ``LINGER_SECONDS``, and only then is the connection
closed. (A client waiting for ``100 Continue`` is not invited to send by this: uvicorn sends none once
an answer has begun.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

UNREAD = {"Connection": "close"}  # on a refusal before the body's end: read no more than the linger
LINGER_SECONDS = 5.0  # nginx's lingering_timeout; a client still sending after that is cut off


def lingering_close(app: ASGIApp) -> ASGIApp:
    """An ASGI middleware: a response that says ``Connection: close`` before the body's end lingers."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        body_ended = False
        closing = False

        async def tracked_receive() -> ReceiveMessage:
            nonlocal body_ended
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_ended = True
            return message

        async def lingering_send(message: Message) -> None:
            nonlocal closing
            if message["type"] == "http.response.start":
                closing = _says_close(message["headers"])
            elif (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and closing
                and not body_ended
            ):
                await send({"type": "http.response.body", "body": message["body"], "more_body": True})  # all of it
                await _drop_the_rest(receive)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await app(scope, tracked_receive, lingering_send)

    return middleware


async def _drop_the_rest(receive: Receive) -> None:
    """Read the body to its end, the client's leaving, or ``LINGER_SECONDS``, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            while True:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return


def _says_close(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"connection" and b"close" in value.lower() for name, value in headers)
