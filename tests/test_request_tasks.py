"""What a one-piece request costs the event loop: no task but the disconnect watch (and that only after 0.1 s).

Each task is two more turns of the loop (and, live, an epoll call each) on every request.
Three used to hide here: Litestar resolving two independent dependencies in a task group
(two tasks), the single piece in a task of its own, and the pipeline's generator left to
the garbage collector, whose finalizer wakes the loop to close it in a task. The app is
driven through ASGI directly, its lifespan run in this loop (the test client runs apps in a
loop of its own), so every task a request creates is seen.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar import Litestar

from gateway.app import create_app
from tests.asgi import post_form
from tests.conftest import make_settings
from tests.corpus import clips
from tests.formdata import multipart

WATCH = "cancel_on_disconnect.<locals>.watch"


@pytest.fixture(scope="module")
async def app() -> AsyncIterator[Litestar]:
    """The gateway on the real embedded engine, started in the tests' own loop."""
    app = create_app(make_settings())
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:  # entered and left in one task, as anyio's task groups in it require
        async with app.lifespan():
            started.set()
            await stop.wait()

    running = asyncio.create_task(lifespan())
    await asyncio.wait([running, asyncio.ensure_future(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()  # the start failed: say why
    yield app
    stop.set()
    await running


@contextmanager
def tasks_created() -> Iterator[list[str]]:
    """The names of the coroutines of every task this loop creates inside the block."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    names: list[str] = []

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any] | Awaitable[Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        names.append(getattr(coro, "__qualname__", type(coro).__name__))
        return asyncio.Task(coro, loop=loop, **kwargs)  # type: ignore[arg-type]

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        yield names
    finally:
        loop.set_task_factory(previous)


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/v1/asr/transcribe/audio", [("process_type", "full")]),
        ("/v1/audio/transcriptions", [("model", "whisper-1"), ("response_format", "json")]),
    ],
)
async def test_a_one_piece_request_starts_no_task_but_the_disconnect_watch(
    app: Litestar, path: str, fields: list[tuple[str, Any]]
) -> None:
    speech = clips()[0]
    upload = ("file", (speech.path.name, "audio/wav", speech.path.read_bytes()))
    with tasks_created() as names:
        status, body = await post_form(app, path, *multipart([*fields, upload]))
        for _ in range(3):  # a finalizer's task would be scheduled for the loop's next turns
            await asyncio.sleep(0)
    assert status == 200, body
    assert json.loads(body)["text"].strip()
    assert names in ([], [WATCH]), names  # the watch only once the request outlives WATCH_AFTER_SECONDS
