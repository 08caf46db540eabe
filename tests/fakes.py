"""A backend slowed on purpose, for load and fault tests (the real engine cannot be made slow on demand).

It counts what reaches it (pieces in flight, most at once, per request) and can be
told to fail; everything else in these tests (pipeline, limits, HTTP) is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import uvicorn
from litestar import Litestar

from compat.errors import BackendUnreachable, GatewayError
from gateway.backends.base import Capabilities, PieceRequest, PieceResult, ReplicaLoad


@dataclass
class SlowBackend:
    """Answers ``text`` for every piece after ``delay`` seconds."""

    delay: float = 0.3
    text: str = "hello world"
    fail_pieces: set[int] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[str] = field(default_factory=Counter)
    order: list[str] = field(default_factory=list)
    finished_seconds: list[float] = field(default_factory=list)  # each finished piece's length, in that order
    up: bool = True  # what healthy() answers
    failure: type[GatewayError] = BackendUnreachable  # what a piece in fail_pieces raises
    gate: asyncio.Event | None = None  # when given, pieces wait for it instead of ``delay``: the test says when

    @property
    def model_id(self) -> str:
        return "slow-test-model"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(languages=None, word_timestamps=False, translation=False)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return self.up

    def load(self) -> list[ReplicaLoad]:
        return [ReplicaLoad("slow", self.in_flight, True)]

    async def transcribe(self, piece: PieceRequest) -> PieceResult:
        self.calls[piece.request_id] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await (self.gate.wait() if self.gate is not None else asyncio.sleep(self.delay))
        except asyncio.CancelledError:
            self.cancelled[piece.request_id] += 1
            raise
        finally:
            self.in_flight -= 1
        if piece.index in self.fail_pieces:
            raise self.failure("injected: the backend failed")
        self.finished[piece.request_id] += 1
        self.order.append(piece.request_id)
        self.finished_seconds.append(piece.seconds)
        return PieceResult(text=f"{self.text} {piece.index}", language="en", segments=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[str]:
    """Run ``app`` under a real uvicorn server on a loopback port, in this event loop."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def until(condition: Callable[[], bool | Awaitable[bool]], seconds: float = 30.0) -> None:
    """Wait for ``condition`` (checked every 20 ms) to come true: a generous deadline, not a guess at a sleep."""
    deadline = time.monotonic() + seconds
    while True:
        met = condition()
        if not isinstance(met, bool):
            met = await met
        if met:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.02)
