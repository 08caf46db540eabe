"""Stop work for a client that has gone: its place in the queue and its pieces are freed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request

# The watch starts this long into the block: a shorter block (a clip on vLLM takes tens of ms) pays a
# timer instead of a task and its two turns of the event loop, and a client gone within it costs at
# most this much of the backend's work.
WATCH_AFTER_SECONDS = 0.1


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: Request[Any, Any, Any]) -> AsyncIterator[None]:
    """Cancel the block if the client disconnects while it runs (noticed from ``WATCH_AFTER_SECONDS`` on).

    Call it once the body has been read: the server then answers ``receive()``
    only with ``http.disconnect``, when the client goes (or the response is done),
    at once if it went before the watch began. The cancellation reaches the
    admission queue and the backend calls, which give back their place and stop
    (vLLM aborts a request whose connection closes).
    """
    task = asyncio.current_task()
    assert task is not None
    gone = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal gone
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                gone = True
                task.cancel()
                return

    def start() -> None:
        nonlocal watcher
        watcher = asyncio.create_task(watch(), name="disconnect-watch")

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_SECONDS, start)
    try:
        yield
    except asyncio.CancelledError:
        if gone:
            task.uncancel()  # our own cancellation, now turned into ClientGone
            raise ClientGone from None
        raise
    finally:
        timer.cancel()
        # Not awaited: that would cost two turns of the event loop before the response;
        # the watch ends on the next one, having seen nothing (its wait is cancelled now).
        if watcher is not None:
            watcher.cancel()


class ClientGone(Exception):
    """The client disconnected; nobody is left to answer."""
