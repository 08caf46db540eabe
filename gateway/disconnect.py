"""Stop work for a client that has gone: its place in the queue and its pieces are freed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: Request[Any, Any, Any]) -> AsyncIterator[None]:
    """Cancel the block if the client disconnects while it runs.

    Call it once the body has been read: the server then answers ``receive()``
    only with ``http.disconnect``, when the client goes (or the response is done).
    The cancellation reaches the admission queue and the backend calls, which
    give back their place and stop (vLLM aborts a request whose connection closes).
    """
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                gone = True
                task.cancel()
                return

    watcher = asyncio.create_task(watch(), name="disconnect-watch")
    try:
        yield
    except asyncio.CancelledError:
        if gone:
            task.uncancel()  # our own cancellation, now turned into ClientGone
            raise ClientGone from None
        raise
    finally:
        # Not awaited: that would cost two turns of the event loop before the response;
        # the watch ends on the next one, having seen nothing (its wait is cancelled now).
        watcher.cancel()


class ClientGone(Exception):
    """The client disconnected; nobody is left to answer."""
