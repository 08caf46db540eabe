"""Decoding's own threads: one a usable core, the smallest upload first.

Decoding is CPU work: seconds for a long MP3. In the event loop's default thread pool, a
burst of decodes held up every upload, whose parts Litestar writes to disk in that pool;
and first come, first served, a short clip waited behind every long file ahead of it. Here
at most ``threads`` decode at once (more would only share the same cores), and a free thread
goes to the smallest upload waiting (its size in bytes stands for its decoding time).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Decoders:
    """Runs decodes in ``threads`` threads, the smallest waiting one next.

    Args:
        threads: decodes at once.
    """

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
        self._free = threads
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap: (size, arrival, wake-up)
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        """Decodes waiting for a thread."""
        return len(self._waiting)

    async def run(self, size: int, decode: Callable[[], T]) -> T:
        """``decode()`` in a decoding thread, once one is free for it (``size``: the upload's bytes)."""
        await self._turn(size)
        running = asyncio.get_running_loop().run_in_executor(self._pool, decode)
        # The thread is handed on when the decode ends, not when its request goes: one cancelled
        # mid-decode still runs to its end (a thread cannot be stopped), and counts until then.
        running.add_done_callback(self._decoded)
        return await asyncio.shield(running)

    def close(self) -> None:
        """Start no more decodes. Those under way end on their own (the interpreter waits for them at exit)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _turn(self, size: int) -> None:
        if self._free and not self._waiting:
            self._free -= 1
            return
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, next(self._arrivals), wake)
        heapq.heappush(self._waiting, entry)
        try:
            await wake
        except BaseException:
            if wake.done() and not wake.cancelled():
                self._hand_on()  # given a thread just as its request went: pass it on
            else:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
            raise

    def _decoded(self, running: asyncio.Future[Any]) -> None:
        if not running.cancelled():
            running.exception()  # retrieved: a request that went away is not told, nor is the log
        self._hand_on()

    def _hand_on(self) -> None:
        while self._waiting:
            _, _, wake = heapq.heappop(self._waiting)
            if not wake.done():
                wake.set_result(None)
                return
        self._free += 1
