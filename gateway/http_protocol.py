"""uvicorn's HTTP/1.1 protocol (httptools) with the two bounds on a client that it lacks.

- **A request head** (request line and headers) of at most ``HEAD_LIMIT`` bytes, counted as they
  arrive: over it, 431 and the connection closed. httptools gathers a header's value by appending each
  piece that arrives to the last, on the event loop, so one client sending a header that never ended
  stalled every route (400 MB over 225 s: ``/healthcheck`` took 14.6 s, median) and held every byte.
- **A client that sends nothing** for ``read_timeout`` seconds while it owes the server bytes (before
  its first request's head, in a head, or in a body) has its connection closed, with a 408 where no
  answer has begun: nginx's ``client_header_timeout`` and ``client_body_timeout``. A stalled upload
  held its connection and its spooled file (up to the upload limit) for good. Time the server itself
  is not reading (the app has not yet asked for more of the body) does not count.

Both answers are in the shape of the route family the request's path names, as every error is.
Between requests, an idle connection is uvicorn's: ``KEEP_ALIVE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import uuid
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from compat import openai, reference
from compat.errors import GatewayError, HeadTooLarge, RequestTimedOut
from gateway.http_errors import is_reference_path
from gateway.http_metrics import count_as
from gateway.intake import request_id_headers, scope_request_id

HEAD_LIMIT = 64 * 1024  # Node's and h11's 16 KiB, four times over: room for cookies and long tokens


def guarded_protocol(read_timeout: float) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.run(http=...)``, with these bounds."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_bytes = 0  # of the head being read: counted from the previous request's end
            self._in_head = True
            self._owed = True  # the client owes bytes: a request not yet begun, or begun and not ended
            self._last_byte = self.loop.time()
            self._stall_check = self.loop.call_later(read_timeout, self._check_stall)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stall_check.cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._last_byte = self.loop.time()
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > HEAD_LIMIT and not self.transport.is_closing():
                self._refuse(HeadTooLarge(f"The request's headers are over {HEAD_LIMIT // 1024} KiB."))

        def on_message_begin(self) -> None:
            self._owed = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._owed = False
            self._in_head = True
            self._head_bytes = 0
            super().on_message_complete()

        def _check_stall(self) -> None:
            if self.transport.is_closing():
                return
            now = self.loop.time()
            waiting_for_us = self.flow.read_paused or (  # the server is not reading, or has not said "send"
                not self._in_head and self.cycle.waiting_for_100_continue
            )
            if waiting_for_us:  # nothing the client can be blamed for
                self._last_byte = now
            waited = now - self._last_byte
            if not self._owed:  # idle between requests: uvicorn's keep-alive closes it, not this
                self._stall_check = self.loop.call_later(read_timeout, self._check_stall)
            elif waited < read_timeout:
                self._stall_check = self.loop.call_later(read_timeout - waited, self._check_stall)
            elif self._in_head and self._head_bytes == 0:
                self.transport.close()  # not one byte of a request: nothing to answer (as nginx does)
            else:
                self._refuse(RequestTimedOut(f"The request stopped arriving: nothing came for {read_timeout:g} s."))

        def _refuse(self, error: GatewayError) -> None:
            """Answer ``error`` unless the request has its answer begun, then close."""
            if self._in_head:  # the request has no id yet
                self.transport.write(_response(error, getattr(self, "url", b""), str(uuid.uuid4())))
            elif not self.cycle.response_started:  # the id the app gave it, else its X-Request-ID
                request_id = scope_request_id(self.cycle.scope)  # type: ignore[arg-type]
                self.transport.write(_response(error, self.url, request_id))
                count_as(self.cycle.scope, error.http_status)  # type: ignore[arg-type]  # not the disconnect the app sees
            self.transport.close()

    return GuardedHttpToolsProtocol


def _response(error: GatewayError, url: bytes, request_id: str) -> bytes:
    """A whole HTTP response for ``error``, in the shape of the family its path names."""
    if is_reference_path(url.split(b"?", 1)[0].decode("latin-1")):
        body = reference.error_body(error, request_id)
        extra = "".join(f"{name}: {value}\r\n" for name, value in request_id_headers(request_id).items())
    else:
        body = openai.error_body(error)
        extra = ""
    status = HTTPStatus(error.http_status)
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
