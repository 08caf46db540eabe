"""The cap on pieces in flight: a freed place goes to the request holding the fewest places.

Round-robin alone put a request that arrived while long ones held every place behind a turn of each of them
(with five long requests, its one piece waited for six places to free: benchmarks/bench_fairness.py).
"""

from __future__ import annotations

import asyncio

from gateway.pipeline.fair import FairSlots


async def hold(slots: FairSlots, owner: object, got: list[object], release: asyncio.Event) -> None:
    async with slots.slot(owner):
        got.append(owner)
        await release.wait()


async def test_a_freed_place_goes_to_the_request_holding_fewest() -> None:
    slots = FairSlots(4)
    first_long, second_long, short = object(), object(), object()
    got: list[object] = []
    releases = [asyncio.Event() for _ in range(9)]
    owners = [first_long, first_long, first_long, second_long]  # every place held
    owners += [first_long, first_long, second_long, second_long, short]  # then waiting, the short one last
    tasks = []
    for owner, release in zip(owners, releases, strict=True):
        tasks.append(asyncio.create_task(hold(slots, owner, got, release)))
        await asyncio.sleep(0)
    assert got == owners[:4]
    releases[0].set()  # the first long request frees a place: the short one, holding none, takes it
    await asyncio.sleep(0.01)
    assert got[4] is short
    releases[1].set()  # now both long requests hold one: the first in turn takes it
    await asyncio.sleep(0.01)
    assert got[5] is first_long
    releases[3].set()  # the second long request frees its only place, and holds none: its turn
    await asyncio.sleep(0.01)
    assert got[6] is second_long
    for release in releases:
        release.set()
    await asyncio.gather(*tasks)
    assert len(got) == 9
    assert slots.in_use == 0


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    slots = FairSlots(1)
    holder, gone, next_one = object(), object(), object()
    got: list[object] = []
    release = asyncio.Event()
    holding = asyncio.create_task(hold(slots, holder, got, release))
    await asyncio.sleep(0)
    leaving = asyncio.create_task(hold(slots, gone, got, asyncio.Event()))
    waiting = asyncio.create_task(hold(slots, next_one, got, asyncio.Event()))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    await asyncio.sleep(0.01)
    assert got == [holder, next_one]
    waiting.cancel()
    await asyncio.gather(holding, leaving, waiting, return_exceptions=True)
    assert slots.in_use == 0
