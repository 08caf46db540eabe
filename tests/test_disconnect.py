"""The disconnect watch: a task only for a block that outlives ``WATCH_AFTER_SECONDS``, and a client gone
before it began is still noticed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Request

from gateway.disconnect import WATCH_AFTER_SECONDS, ClientGone, cancel_on_disconnect
from tests.test_request_tasks import WATCH, tasks_created


def request_whose_client(*, gone: bool) -> Request[Any, Any, Any]:
    """A request whose body is read: ``receive`` says the client left, or waits as for a client still there."""

    async def receive() -> dict[str, Any]:
        if gone:
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # no message until the response is done
        raise AssertionError("unreachable")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b"", "state": {}}
    return Request(scope, receive)  # type: ignore[arg-type]


async def test_a_block_shorter_than_the_wait_starts_no_task() -> None:
    with tasks_created() as names:
        async with cancel_on_disconnect(request_whose_client(gone=False)):
            await asyncio.sleep(0)
        await asyncio.sleep(WATCH_AFTER_SECONDS * 2)  # a timer left running would start the watch now
    assert names == []


async def test_a_longer_block_is_watched_and_its_watch_ends_with_it() -> None:
    with tasks_created() as names:
        async with cancel_on_disconnect(request_whose_client(gone=False)):
            await asyncio.sleep(WATCH_AFTER_SECONDS * 2)
    assert names == [WATCH]
    watches = [t for t in asyncio.all_tasks() if t.get_name() == "disconnect-watch"]
    assert len(watches) == 1, "the watch is still running until the loop's next turn"
    await asyncio.gather(*watches, return_exceptions=True)
    assert all(t.cancelled() for t in watches), "the watch is cancelled when the block ends"


async def test_a_client_gone_before_the_watch_began_is_noticed_when_it_begins() -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ClientGone):
        async with cancel_on_disconnect(request_whose_client(gone=True)):
            await asyncio.sleep(30)  # the backend's work, cut short
    waited = loop.time() - began
    assert WATCH_AFTER_SECONDS <= waited < 10, waited
