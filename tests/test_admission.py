"""The Retry-After hint of a full queue: derived from what runs, before any request has finished too."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from compat.errors import BackendTimeout, ConcurrencyLimit
from gateway.metrics import Metrics
from gateway.pipeline import admission
from gateway.pipeline.admission import ModeLimit
from gateway.pipeline.options import Mode


class Clock:
    """``time.monotonic`` as the test sets it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(admission, "time", SimpleNamespace(monotonic=fake))  # this module's clock alone
    return fake


async def refused(limit: ModeLimit) -> ConcurrencyLimit:
    with pytest.raises(ConcurrencyLimit) as error:
        async with limit.place("/v1/audio/transcriptions"):
            pass
    return error.value


async def test_right_after_start_the_hint_follows_how_long_the_running_request_has_run(clock: Clock) -> None:
    """Nothing has finished yet: the running request is expected to take as long again as it has (the hint
    was 1 s whatever ran: a 96 s file's request still needed 5 s more)."""
    limit = ModeLimit(Mode.FULL, 1, queue_timeout=0.05, metrics=Metrics("t"))
    async with limit.place("/v1/audio/transcriptions"):
        clock.now += 6.0
        error = await refused(limit)
    assert error.headers["Retry-After"] == "6"


async def test_the_hint_is_the_typical_time_left_once_requests_have_finished(clock: Clock) -> None:
    limit = ModeLimit(Mode.FULL, 1, queue_timeout=0.05, metrics=Metrics("t"))
    for _ in range(3):  # three requests of 10 s each
        async with limit.place("/v1/audio/transcriptions"):
            clock.now += 10.0
    async with limit.place("/v1/audio/transcriptions"):
        clock.now += 4.0
        early = await refused(limit)
        clock.now += 11.0  # 5 s past the typical 10 s: a long one, expected to overrun as much again
        late = await refused(limit)
    assert early.headers["Retry-After"] == "6"
    assert late.headers["Retry-After"] == "5"


async def test_with_several_places_the_first_to_free_decides(clock: Clock) -> None:
    """One request stuck for minutes does not hold back the hint while younger ones will soon be done."""
    limit = ModeLimit(Mode.FULL, 3, queue_timeout=0.05, metrics=Metrics("t"))
    for _ in range(3):  # requests of 3 s each
        async with limit.place("/v1/audio/transcriptions"):
            clock.now += 3.0
    async with limit.place("/v1/audio/transcriptions"):
        clock.now += 119.0
        async with limit.place("/v1/audio/transcriptions"), limit.place("/v1/audio/transcriptions"):
            clock.now += 1.0
            error = await refused(limit)
    assert error.headers["Retry-After"] == "2"  # the two at 1 s, 2 s short of the typical 3 s


async def test_waiters_ahead_add_a_typical_time_per_round(clock: Clock) -> None:
    limit = ModeLimit(Mode.FULL, 1, queue_timeout=0.05, metrics=Metrics("t"))
    async with limit.place("/v1/audio/transcriptions"):
        clock.now += 3.0
        first = asyncio.create_task(refused(limit))
        await asyncio.sleep(0)  # it waits in the queue before the second one asks
        second = await refused(limit)
        ahead = await first
    # nothing finished: the running one is expected to take 3 s more and 6 s in all; the first refused had the
    # second still waiting behind it, so a place for it is a round later
    assert ahead.headers["Retry-After"] == "9"
    assert second.headers["Retry-After"] == "3"


async def test_requests_that_fail_are_not_service_times(clock: Clock) -> None:
    """Files refused at once (an empty upload, a text file named .mp3) fail with their place held: they do
    not make the typical request look short."""
    limit = ModeLimit(Mode.FULL, 1, queue_timeout=0.05, metrics=Metrics("t"))
    for _ in range(3):  # requests of 10 s each
        async with limit.place("/v1/audio/transcriptions"):
            clock.now += 10.0

    async def bad_file() -> None:  # refused in 10 ms
        async with limit.place("/v1/audio/transcriptions"):
            clock.now += 0.01
            raise ValueError("bad file")

    for _ in range(5):
        with pytest.raises(ValueError, match="bad file"):
            await bad_file()
    async with limit.place("/v1/audio/transcriptions"):
        clock.now += 4.0
        error = await refused(limit)
    assert error.headers["Retry-After"] == "6"  # 10 s typical, 4 s gone


async def test_a_backend_that_fails_slowly_is_a_service_time(clock: Clock) -> None:
    """Timeouts of a backend that is down held their places as long as the next requests may."""
    limit = ModeLimit(Mode.FULL, 1, queue_timeout=0.05, metrics=Metrics("t"))

    async def timed_out() -> None:  # the backend's 30 s timeout
        async with limit.place("/v1/audio/transcriptions"):
            clock.now += 30.0
            raise BackendTimeout("vLLM did not answer within 30 s.")

    for _ in range(3):
        with pytest.raises(BackendTimeout):
            await timed_out()
    async with limit.place("/v1/audio/transcriptions"):
        clock.now += 4.0
        error = await refused(limit)
    assert error.headers["Retry-After"] == "26"  # 30 s typical, 4 s gone
