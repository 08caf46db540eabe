"""Run: send pieces to the backend in parallel, with a timeout and one retry each.

Pieces come back in order (for merging and streaming). A global cap bounds the
pieces in flight to the backend across all requests, granted to the request holding
the fewest (``FairSlots``); a piece's timeout starts when it gets a place, so
waiting for one never counts against it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import numpy as np

from compat.errors import BackendFailed, BackendTimeout, GatewayError
from gateway.audio import ON_LOOP_SAMPLES
from gateway.backends.base import Backend, PieceRequest, PieceResult
from gateway.metrics import Metrics
from gateway.pipeline.fair import FairSlots
from gateway.pipeline.options import Mode, Options
from gateway.pipeline.plan import SAMPLE_RATE, Piece

log = logging.getLogger(__name__)
ATTEMPTS = 2  # one retry of a failed piece


@dataclass(frozen=True)
class PieceOutcome:
    """How one piece ended: a result, or the error of its last attempt."""

    piece: Piece
    result: PieceResult | None
    error: GatewayError | None
    attempts: int
    backend_seconds: float


class PieceRunner:
    """Dispatches pieces to one backend under a global cap.

    Args:
        backend: where pieces go.
        max_in_flight: most pieces sent to the backend at once, all requests together.
        metrics: where pieces in flight, their times and retries are counted.
    """

    def __init__(self, backend: Backend, *, max_in_flight: int, metrics: Metrics) -> None:
        self._backend = backend
        self.slots = FairSlots(max_in_flight)
        self._metrics = metrics

    async def run(
        self, samples: np.ndarray, pieces: list[Piece], options: Options, *, piece_timeout: float
    ) -> AsyncGenerator[PieceOutcome, None]:
        """Start every piece at once; yield their outcomes in order.

        Leaving the iteration early (a client gone, an error) cancels what is left.
        """
        line = object()  # this request's line for places: not its id, which clients choose (and may repeat)
        if len(pieces) == 1:  # in the caller's task: a task of its own costs two more turns of the event loop
            yield await self._one(samples, pieces[0], options, piece_timeout, line)
            return
        tasks = [
            asyncio.create_task(self._one(samples, piece, options, piece_timeout, line), name=f"piece-{piece.index}")
            for piece in pieces
        ]
        try:
            for task in tasks:
                yield await task
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(
        self, samples: np.ndarray, piece: Piece, options: Options, piece_timeout: float, line: object
    ) -> PieceOutcome:
        error: GatewayError = BackendFailed("The piece was not sent.")
        spent = 0.0
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                self._metrics.retries.inc()
            async with self.slots.slot(line):
                started = time.perf_counter()
                deadline = asyncio.get_running_loop().time() + piece_timeout
                request = await _piece_request(samples, piece, options, deadline)  # spans copied only in flight
                outcome = "cancelled"  # unless one of the branches below says otherwise
                try:
                    async with asyncio.timeout_at(deadline):
                        result: PieceResult = await self._backend.transcribe(request)
                except TimeoutError:
                    outcome = "timeout"
                    error = BackendTimeout(
                        f"The backend did not answer piece {piece.index} within {piece_timeout:g} s."
                    )
                except GatewayError as failed:
                    error = failed
                    if not failed.worth_resending:  # a refusal: the same request would be refused again
                        outcome = "refused"
                        spent += time.perf_counter() - started
                        self._log(options, piece, attempt, spent, error)
                        break
                    outcome = "error"
                else:
                    outcome = "ok"
                    spent += time.perf_counter() - started
                    self._log(options, piece, attempt, spent, None)
                    return PieceOutcome(piece, result, None, attempt, spent)
                finally:
                    self._metrics.piece_seconds.labels(outcome=outcome).observe(time.perf_counter() - started)
                spent += time.perf_counter() - started
            self._log(options, piece, attempt, spent, error)
        return PieceOutcome(piece, None, error, attempt, spent)

    @staticmethod
    def _log(options: Options, piece: Piece, attempt: int, seconds: float, error: GatewayError | None) -> None:
        if not log.isEnabledFor(logging.INFO):  # building the fields costs more than the call
            return
        log.info(
            "piece failed" if error else "piece done",
            extra={
                "request_id": options.request_id,
                "piece": piece.index,
                "piece_start": round(piece.offset, 3),
                "piece_seconds": round(piece.seconds, 3),
                "attempt": attempt,
                "backend_seconds": round(seconds, 3),
                "error_code": error.code if error else None,
                "error": error.message if error else None,
            },
        )


async def _piece_request(samples: np.ndarray, piece: Piece, options: Options, deadline: float) -> PieceRequest:
    """The backend's request for a piece: its 16-bit samples, a view of the request's where it is one span."""
    joined = functools.partial(piece.audio, samples)
    # a piece of several spans is a copy: one longer than a chunk is made off the event loop
    on_loop = len(piece.spans) == 1 or piece.seconds * SAMPLE_RATE <= ON_LOOP_SAMPLES
    audio = joined() if on_loop else await asyncio.to_thread(joined)
    return PieceRequest(
        samples=audio,
        language=options.language,
        prompt=options.prompt,
        temperature=options.temperature,
        # Chunked mode always aligns words: segment starts then come from the first
        # word's time, not Whisper's coarse segment stamps (about 8 % more work).
        word_timestamps=options.word_timestamps or options.mode is Mode.CHUNKED,
        task=options.task,
        request_id=options.request_id,
        index=piece.index,
        joins=piece.joins,
        deadline=deadline,
    )
