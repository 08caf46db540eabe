"""A cap on pieces in flight to the backend, shared fairly between requests.

A plain semaphore serves waiters first come, first served: the 60 pieces of a
30-minute file queued first would hold back every piece of every request behind
them. Here each request has its own line, and a freed place goes to the request
holding the fewest places (the first in turn among equals, round-robin), so a short
request that arrives while long ones hold every place takes the next one that frees,
not a turn after each of them (``benchmarks/bench_fairness.py``).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class FairSlots:
    """``capacity`` places, granted to the owner holding fewest, round-robin among equals.

    Args:
        capacity: places in all.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._lines: dict[Hashable, deque[asyncio.Future[None]]] = {}
        self._turns: deque[Hashable] = deque()
        self._held: Counter[Hashable] = Counter()

    @property
    def in_use(self) -> int:
        """Places held now."""
        return self.capacity - self._free

    @asynccontextmanager
    async def slot(self, owner: Hashable) -> AsyncIterator[None]:
        """Hold a place for the block, waiting in ``owner``'s line."""
        await self._acquire(owner)
        try:
            yield
        finally:
            self._release(owner)

    async def _acquire(self, owner: Hashable) -> None:
        if self._free > 0 and not self._turns:
            self._free -= 1
            self._held[owner] += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._lines.get(owner)
        if line is None:
            line = self._lines[owner] = deque()
            self._turns.append(owner)
        line.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(owner)  # granted just as the wait ended: pass the place on
            elif waiter in line:
                line.remove(waiter)
            raise

    def _release(self, owner: Hashable) -> None:
        self._held[owner] -= 1
        if self._held[owner] <= 0:
            del self._held[owner]
        while self._turns:
            fewest = min(range(len(self._turns)), key=lambda i: self._held[self._turns[i]])  # first among equals
            chosen = self._turns[fewest]
            del self._turns[fewest]
            line = self._lines[chosen]
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    self._held[chosen] += 1
                    if line:
                        self._turns.append(chosen)  # its next piece waits for its next turn
                    else:
                        del self._lines[chosen]
                    return
            del self._lines[chosen]
        self._free += 1
