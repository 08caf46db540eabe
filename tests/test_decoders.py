"""Decoding's threads: the smallest upload waiting goes next, and never more decodes than threads at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.pipeline.decoders import PATIENCE_SECONDS, Decoders
from tests.fakes import until


class Held:
    """Decodes that run until the test lets them end, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.order: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def decode(self, name: str) -> str:
        with self._lock:
            self.order.append(name)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.release.wait(30)
            return name
        finally:
            with self._lock:
                self.running -= 1


async def test_a_free_thread_goes_to_the_smallest_upload_waiting() -> None:
    decoders, held = Decoders(threads=1), Held()
    try:
        first = asyncio.create_task(decoders.run(5_000_000, lambda: held.decode("first")))
        await until(lambda: held.order == ["first"])
        long = asyncio.create_task(decoders.run(14_000_000, lambda: held.decode("30-minute MP3")))
        short = asyncio.create_task(decoders.run(80_000, lambda: held.decode("10 s clip")))
        await until(lambda: decoders.waiting == 2)
        held.release.set()
        assert await asyncio.gather(first, long, short) == ["first", "30-minute MP3", "10 s clip"]
        assert held.order == ["first", "10 s clip", "30-minute MP3"]
    finally:
        held.release.set()
        decoders.close()


async def test_a_request_that_goes_away_keeps_its_thread_until_its_decode_ends() -> None:
    """A decode cannot be stopped: the request that went away leaves it running, and it still counts."""
    decoders, held = Decoders(threads=2), Held()
    try:
        gone = asyncio.create_task(decoders.run(1_000, lambda: held.decode("gone")))
        await until(lambda: held.running == 1)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        second = asyncio.create_task(decoders.run(1_000, lambda: held.decode("second")))
        await until(lambda: held.running == 2)
        queued = asyncio.create_task(decoders.run(1_000, lambda: held.decode("queued")))  # given up while queued
        others = [asyncio.create_task(decoders.run(1_000, lambda n=n: held.decode(f"next {n}"))) for n in range(2)]
        await until(lambda: decoders.waiting == 3)
        assert held.running == 2, "the decode whose request went away still holds its thread"
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert decoders.waiting == 2
        held.release.set()
        assert await asyncio.gather(second, *others) == ["second", "next 0", "next 1"]
        assert held.most_at_once == 2
        assert "queued" not in held.order
    finally:
        held.release.set()
        decoders.close()


async def test_a_failed_decode_frees_its_thread() -> None:
    decoders = Decoders(threads=1)

    def broken() -> None:
        raise ValueError("not audio")

    try:
        with pytest.raises(ValueError, match="not audio"):
            await decoders.run(10, broken)
        assert await decoders.run(10, lambda: "next") == "next"
    finally:
        decoders.close()


async def test_a_large_upload_waiting_past_the_patience_goes_before_smaller_ones() -> None:
    now = [0.0]
    decoders, held = Decoders(threads=1, clock=lambda: now[0]), Held()
    try:
        first = asyncio.create_task(decoders.run(1_000, lambda: held.decode("first")))
        await until(lambda: held.order == ["first"])
        large = asyncio.create_task(decoders.run(50_000_000, lambda: held.decode("large")))
        await until(lambda: decoders.waiting == 1)
        now[0] += PATIENCE_SECONDS
        small = asyncio.create_task(decoders.run(1_000, lambda: held.decode("small")))
        await until(lambda: decoders.waiting == 2)
        held.release.set()
        await asyncio.gather(first, large, small)
        assert held.order == ["first", "large", "small"]
    finally:
        held.release.set()
        decoders.close()


async def test_waiters_that_go_together_as_a_thread_frees_leave_cleanly() -> None:
    """Two requests gone in the loop turn a decode ends (clients leaving together, a shutdown): the hand-on
    passes over them, and each still ends with its cancellation, not an error of the scheduler's."""
    decoders, held = Decoders(threads=1), Held()
    try:
        first = asyncio.create_task(decoders.run(1_000, lambda: held.decode("first")))
        await until(lambda: held.order == ["first"])
        gone = [asyncio.create_task(decoders.run(1_000, lambda: held.decode("gone"))) for _ in range(2)]
        await until(lambda: decoders.waiting == 2)
        for task in gone:
            task.cancel()
        # What a decode ending in that turn does, before the two tasks see their cancellation (called by
        # hand so that the order is certain; the decode still running hands its thread on again below).
        decoders._hand_on()
        for task in gone:
            with pytest.raises(asyncio.CancelledError):
                await task
        assert decoders.waiting == 0
        held.release.set()
        assert await first == "first"
    finally:
        held.release.set()
        decoders.close()


async def test_after_close_every_decode_is_refused_and_none_waits() -> None:
    decoders = Decoders(threads=1)
    decoders.close()
    async with asyncio.timeout(5):  # the thread taken by a refused decode is not lost: the next is refused too
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await decoders.run(10, lambda: "never")
