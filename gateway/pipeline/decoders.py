"""Decoding's own threads: one a usable core, the smallest upload first.

Decoding is CPU work: seconds for a long MP3. In the event loop's default thread pool, a
burst of decodes held up every upload, whose parts Litestar writes to disk in that pool;
and first come, first served, a short clip waited behind every long file ahead of it. Here
at most ``threads`` decode at once (more would only share the same cores), and a free thread
goes to the smallest upload waiting (its size in bytes stands for its decoding time), unless
one has waited ``PATIENCE_SECONDS``: then the one that has waited longest, so that a stream
of small files never keeps a large one waiting for good. The waiting are few (each holds
one of the admission's places), so each choice is a scan.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

PATIENCE_SECONDS = 30.0


@dataclass(eq=False)
class _Waiter:
    size: int
    since: float
    wake: asyncio.Future[None] = field(repr=False)


class Decoders:
    """Runs decodes in ``threads`` threads: the smallest waiting one next, or one waiting too long.

    Args:
        threads: decodes at once.
        clock: seconds, monotonic (tests set it).
    """

    def __init__(self, threads: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
        self._free = threads
        self._waiting: list[_Waiter] = []
        self._clock = clock

    @property
    def waiting(self) -> int:
        """Decodes waiting for a thread."""
        return len(self._waiting)

    async def run(self, size: int, decode: Callable[[], T]) -> T:
        """``decode()`` in a decoding thread, once one is free for it (``size``: the upload's bytes)."""
        await self._turn(size)
        try:
            running = asyncio.get_running_loop().run_in_executor(self._pool, decode)
        except BaseException:  # refused (after close): the thread taken was never used
            self._hand_on()
            raise
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
        waiter = _Waiter(size, self._clock(), asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        try:
            await waiter.wake
        except BaseException:
            if waiter.wake.done() and not waiter.wake.cancelled():
                self._hand_on()  # given a thread just as its request went: pass it on
            elif waiter in self._waiting:  # (a hand-on may have passed over it already)
                self._waiting.remove(waiter)
            raise

    def _decoded(self, running: asyncio.Future[Any]) -> None:
        if not running.cancelled():
            running.exception()  # retrieved: a request that went away is not told, nor is the log
        self._hand_on()

    def _hand_on(self) -> None:
        while self._waiting:
            waiter = self._next()
            self._waiting.remove(waiter)
            if not waiter.wake.done():
                waiter.wake.set_result(None)
                return
        self._free += 1

    def _next(self) -> _Waiter:
        oldest = min(self._waiting, key=lambda w: w.since)
        if self._clock() - oldest.since >= PATIENCE_SECONDS:
            return oldest
        return min(self._waiting, key=lambda w: (w.size, w.since))
