"""Clock stamps inside a running gateway, for ``bench_hop`` only (never imported by the gateway itself).

``install()`` wraps a few of uvicorn's and the gateway's functions so that each request
leaves ``(event, CLOCK_MONOTONIC ns)`` pairs: the head parsed, the body complete, the
pipeline's start, decoding, planning, the piece's WAV written, the call to vLLM sent and
answered, the pipeline's end, the response started and written. The list is written to
``$HOP_STAMPS`` as JSON when uvicorn shuts down. CLOCK_MONOTONIC is one clock for every
process on the machine, so the client's own stamps line up with these.

It is loaded through a ``sitecustomize`` module that ``bench_hop`` puts on the gateway's
``PYTHONPATH``; a wrapped name that no longer exists fails the gateway's start, loudly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVENTS: list[tuple[str, int]] = []


def _stamp(name: str) -> None:
    EVENTS.append((name, time.monotonic_ns()))


def _around_sync(owner: Any, attribute: str, name: str) -> None:
    original: Callable[..., Any] = getattr(owner, attribute)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _stamp(name + "_in")
        try:
            return original(*args, **kwargs)
        finally:
            _stamp(name + "_out")

    setattr(owner, attribute, wrapped)


def _around_async(owner: Any, attribute: str, before: str, after: str | None = None) -> None:
    original: Callable[..., Any] = getattr(owner, attribute)

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        _stamp(before)
        try:
            return await original(*args, **kwargs)
        finally:
            if after:
                _stamp(after)

    setattr(owner, attribute, wrapped)


def _write_events() -> None:
    """Once, as the server stops: blocking the loop no longer matters."""
    Path(os.environ["HOP_STAMPS"]).write_text(json.dumps(EVENTS))


def install() -> None:
    """Wrap the functions; write the stamps to ``$HOP_STAMPS`` at shutdown."""
    import uvicorn.server
    from uvicorn.protocols.http import httptools_impl

    from gateway.backends.vllm import backend, media
    from gateway.pipeline import core

    protocol = httptools_impl.HttpToolsProtocol
    begin, complete = protocol.on_message_begin, protocol.on_message_complete

    def on_message_begin(self: Any) -> None:
        _stamp("head")
        begin(self)

    def on_message_complete(self: Any) -> None:
        _stamp("body")
        complete(self)

    protocol.on_message_begin = on_message_begin  # type: ignore[method-assign]
    protocol.on_message_complete = on_message_complete  # type: ignore[method-assign]

    send = httptools_impl.RequestResponseCycle.send

    async def send_stamped(self: Any, message: Any) -> None:
        if message["type"] == "http.response.start":
            _stamp("response_start")
        await send(self, message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            _stamp("response_written")

    httptools_impl.RequestResponseCycle.send = send_stamped  # type: ignore[method-assign]

    _around_async(core.Pipeline, "transcribe", "pipeline_start", "pipeline_end")
    _around_sync(core, "decode_audio", "decode")
    _around_sync(core, "plan_full", "plan")
    _around_sync(media, "_write", "wav_file")
    _around_async(backend.VllmBackend, "_complete", "vllm_sent", "vllm_answered")

    shutdown = uvicorn.server.Server.shutdown

    async def shutdown_and_write(self: Any, *args: Any, **kwargs: Any) -> None:
        _write_events()
        await shutdown(self, *args, **kwargs)

    uvicorn.server.Server.shutdown = shutdown_and_write  # type: ignore[method-assign]
