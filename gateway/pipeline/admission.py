"""Admission: how many requests of each mode run at once, and a bounded wait for a place.

Past the wait, ASR-6043 with a retry hint derived from what is in flight: how long
the requests ahead are expected to take (the mode's recent service times), not a
constant. A waiter that is cancelled (its client went away) leaves the queue.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from compat.errors import ConcurrencyLimit, GatewayError
from gateway.metrics import Metrics
from gateway.pipeline.options import Mode

_RECENT = 20  # service times remembered per mode


class ModeLimit:
    """At most ``limit`` requests of one mode at once; others wait up to ``queue_timeout`` seconds.

    Args:
        mode: which mode this limits.
        limit: requests processed at once.
        queue_timeout: longest wait for a place.
        metrics: where queue depth and waits are recorded.
    """

    def __init__(self, mode: Mode, limit: int, queue_timeout: float, metrics: Metrics) -> None:
        self.mode = mode
        self.limit = limit
        self._queue_timeout = queue_timeout
        self._metrics = metrics
        self._running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._started: dict[int, float] = {}

    @property
    def running(self) -> int:
        """Requests holding a place now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests waiting for a place now."""
        return len(self._waiters)

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead, served ``limit`` at a time.

        A place frees when the first of the running requests is done. Each is expected to take the
        mode's typical time (the median of the last ones); one that has run past it, as long again as
        it has overrun (a request that has taken long is likely a long one); and before any request
        has finished, as long again as it has run (right after start every hint was 1 s, whatever ran).
        """
        now = time.monotonic()
        elapsed = [now - t for t in self._started.values()]
        if self._recent:
            typical = sorted(self._recent)[len(self._recent) // 2]
            soonest = min((abs(typical - e) for e in elapsed), default=0.0)
        else:
            typical = max(2 * statistics.median(elapsed), self._queue_timeout) if elapsed else self._queue_timeout
            soonest = min(elapsed, default=0.0)
        rounds_ahead = len(self._waiters) // self.limit
        return max(1, math.ceil(soonest + rounds_ahead * typical))

    @asynccontextmanager
    async def place(self, path: str) -> AsyncIterator[None]:
        """Hold a place for the block.

        Raises:
            ConcurrencyLimit: no place freed up within the queue timeout.
        """
        started = time.monotonic()
        try:
            await self._acquire()
        except ConcurrencyLimit:  # a wait that ended in a 429 is a wait too: saturation shows in the histogram
            self._metrics.queue_wait.labels(path=path).observe(time.monotonic() - started)
            raise
        self._metrics.queue_wait.labels(path=path).observe(time.monotonic() - started)
        token = object()
        self._started[id(token)] = time.monotonic()
        served = True
        try:
            yield
        except BaseException as error:
            # A refused file (decoded with its place held, refused in milliseconds) or a client gone is no
            # service time: it would make the typical request look short, and every Retry-After too soon.
            # A backend's failure is one: a timeout held its place as long as the next one may.
            served = isinstance(error, GatewayError) and error.http_status >= 500
            raise
        finally:
            held = time.monotonic() - self._started.pop(id(token))
            if served:
                self._recent.append(held)
            self._release()

    async def _acquire(self) -> None:
        if self._running < self.limit and not self._waiters:
            self._running += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._metrics.queue_depth.inc()
        try:
            async with asyncio.timeout(self._queue_timeout):
                await waiter
        except BaseException as error:
            if waiter.done() and not waiter.cancelled():
                self._release()  # a place was handed over just as the wait ended: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(error, TimeoutError):
                retry = self.retry_after()
                raise ConcurrencyLimit(
                    f"Too many {self.mode.value} requests in progress ({self._running} of {self.limit}, "
                    f"{len(self._waiters)} waiting); retry in {retry} s.",
                    retry_after_seconds=retry,
                ) from None
            raise
        finally:
            self._metrics.queue_depth.dec()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the place passes straight to the next waiter
                return
        self._running -= 1


class Admission:
    """The limits of both modes.

    Args:
        limits: the limit of each mode.
    """

    def __init__(self, limits: dict[Mode, ModeLimit]) -> None:
        self._limits = limits

    def __getitem__(self, mode: Mode) -> ModeLimit:
        return self._limits[mode]
