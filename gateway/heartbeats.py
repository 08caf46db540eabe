"""Marks of life in a quiet stream.

A streamed transcription may wait minutes for its first piece (a whole file in full mode
is one piece). Proxies close a response that sends nothing for a while (nginx after 60 s,
by default), so the stream sends an SSE comment, which every SSE client skips, while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

T = TypeVar("T")

EVERY_SECONDS = 15.0


async def with_heartbeats(items: AsyncIterator[T], every: float) -> AsyncIterator[T | None]:
    """``items`` as they come, and ``None`` each time ``every`` seconds pass without one.

    The wait for the next item goes on across heartbeats (it is never cancelled for one);
    leaving the iteration cancels it and closes ``items`` (an async generator's cleanup runs
    now, not when the garbage collector finds it).
    """
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # its outcome no longer matters
                await pending
        if isinstance(items, AsyncGenerator):
            await items.aclose()
