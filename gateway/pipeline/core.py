"""The one flow every route uses: admit, decode, plan, run, merge (intake and render are the routes')."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import IO

from compat.errors import AudioTooLong, GatewayError, NotSupported
from compat.transcript import Transcript
from gateway.audio import ON_LOOP_SAMPLES, DecodedAudio, decode_audio, is_plain_wav
from gateway.backends.base import Backend
from gateway.cores import usable_cores
from gateway.metrics import Metrics
from gateway.pipeline.admission import Admission
from gateway.pipeline.decoders import Decoders
from gateway.pipeline.merge import locate_timeless, merge, unlocated_timeless
from gateway.pipeline.options import Mode, Options
from gateway.pipeline.plan import plan_chunked, plan_full
from gateway.pipeline.run import PieceOutcome, PieceRunner
from gateway.settings import Settings

log = logging.getLogger(__name__)

_SMALL_HEADER = 4096  # a WAV's chunks before its samples
# Merging or rendering a transcript this long takes milliseconds (30 minutes with word times: about 5 ms
# each, measured): longer ones are merged and rendered in a thread, off the event loop.
LONG_TRANSCRIPT_SECONDS = 300.0


@dataclass(frozen=True)
class Decoded:
    """Progress: the audio is decoded and planned."""

    duration: float
    pieces: int


@dataclass(frozen=True)
class PieceDone:
    """Progress: the next piece, in order, is done."""

    outcome: PieceOutcome


@dataclass(frozen=True)
class Finished:
    """The end: the merged transcript."""

    transcript: Transcript


Event = Decoded | PieceDone | Finished


def _transcript(outcomes: list[PieceOutcome], audio: DecodedAudio, options: Options) -> Transcript:
    """The merged transcript; where a backend gave no times, the pieces' sound is located only if shown."""
    if options.segment_times:
        outcomes = locate_timeless(outcomes, audio.samples)
    return merge(outcomes, duration=audio.duration, with_words=options.word_timestamps)


class Pipeline:
    """Admit, decode, plan, run and merge, for every route.

    Args:
        settings: limits, chunk length and timeouts.
        backend: the engine pieces go to.
        admission: the concurrency limit of each mode.
        metrics: where the pipeline's metrics go.
        max_pieces_in_flight: cap on pieces at the backend, all requests together.
    """

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        *,
        admission: Admission,
        metrics: Metrics,
        max_pieces_in_flight: int,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.admission = admission
        self._metrics = metrics
        self.runner = PieceRunner(backend, max_in_flight=max_pieces_in_flight, metrics=metrics)
        self.decoders = Decoders(usable_cores())

    def close(self) -> None:
        """Start no more decodes (at shutdown)."""
        self.decoders.close()

    def max_seconds(self, mode: Mode) -> float:
        """The longest audio the mode takes."""
        return self.settings.max_full_seconds if mode is Mode.FULL else self.settings.max_chunked_seconds

    def check(self, options: Options) -> None:
        """Refuse, before any work, what the backend cannot do.

        Raises:
            NotSupported: a language, translation or word times it does not have.
        """
        capabilities = self.backend.capabilities
        model = self.backend.model_id
        languages = capabilities.languages
        if options.language is not None and languages is not None and options.language not in languages:
            known = ", ".join(sorted(languages)) if len(languages) <= 10 else f"{len(languages)} languages"
            other = "Use a multilingual model (EMBEDDED_MODEL) or" if len(languages) == 1 else "Use"
            raise NotSupported(
                f"The model '{model}' cannot transcribe language '{options.language}'; it knows: {known}. "
                f"{other} the vLLM backend (Qwen3-ASR).",
                param="language",
            )
        if options.task == "translate" and not capabilities.translation:
            raise NotSupported(f"The model '{model}' cannot translate.", param="model")
        if options.word_timestamps and not capabilities.word_timestamps:
            raise NotSupported(
                f"The model '{model}' gives no word times; ask for timestamp_granularities[]=segment only "
                "(segments are the real positions of the speech).",
                param="timestamp_granularities[]",
            )

    async def run(self, source: IO[bytes], options: Options, *, name: str = "file") -> AsyncGenerator[Event, None]:
        """Admit, decode, plan, run and merge: ``Decoded``, then each piece in order, then ``Finished``.

        The first event comes once the request has its place and its audio is decoded, so a
        caller can still answer with an error before it starts a streamed response; ``source``
        is not read after it. One completion or failure event is logged per request.

        Raises:
            GatewayError: ASR-6043 when no place frees in time; ASR-604x from decoding; the
                backend's error if every piece failed.
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        audio: DecodedAudio | None = None
        pieces = []
        outcomes: list[PieceOutcome] = []
        admitted = False
        try:
            # A place first, then the decode: a request refused a place (ASR-6043) costs no decoding,
            # and waiting requests hold their upload, not its PCM (up to 57.6 MB for 30 minutes).
            async with self.admission[options.mode].place(options.path):
                admitted = True
                timings["queue"] = time.perf_counter() - started
                in_progress = self._metrics.in_progress.labels(mode=options.mode.value)
                in_progress.inc()  # holding a place, decoding included
                try:
                    audio = await self._decode(source, options, name)
                    timings["decode"] = time.perf_counter() - started - timings["queue"]
                    if options.mode is Mode.CHUNKED:
                        timeout = self.settings.chunk_timeout_seconds
                        plan = functools.partial(plan_chunked, audio.samples, self.settings.chunk_seconds)
                        # a 30-minute file takes tens of milliseconds of numpy: not on the event loop
                        pieces = plan() if len(audio.samples) <= ON_LOOP_SAMPLES else await asyncio.to_thread(plan)
                    else:
                        timeout = self.settings.full_timeout_seconds
                        pieces = plan_full(audio.samples)  # one piece: nothing read
                    timings["plan"] = time.perf_counter() - started - timings["queue"] - timings["decode"]
                    self._metrics.audio_duration.labels(path=options.path).observe(audio.duration)
                    yield Decoded(duration=audio.duration, pieces=len(pieces))
                    run_started = time.perf_counter()
                    running = self.runner.run(audio.samples, pieces, options, piece_timeout=timeout)
                    async with contextlib.aclosing(running):  # pieces left are cancelled at once on an error
                        async for outcome in running:
                            outcomes.append(outcome)
                            yield PieceDone(outcome)
                    timings["run"] = time.perf_counter() - run_started
                    merged = functools.partial(_transcript, outcomes, audio, options)
                    reads_loudness = options.segment_times and bool(unlocated_timeless(outcomes))
                    on_loop = audio.duration <= LONG_TRANSCRIPT_SECONDS and (
                        not reads_loudness or len(audio.samples) <= ON_LOOP_SAMPLES
                    )
                    transcript = merged() if on_loop else await asyncio.to_thread(merged)
                finally:
                    in_progress.dec()
            if transcript.partial:
                self._metrics.partials.inc()
        except GatewayError as error:
            if not admitted:  # refused a place (ASR-6043): how long it waited
                timings["queue"] = time.perf_counter() - started
            self._log_end(options, audio, len(pieces), outcomes, timings, started, error)
            error.logged = True
            raise
        self._log_end(options, audio, len(pieces), outcomes, timings, started, None)
        yield Finished(transcript)

    async def _decode(self, source: IO[bytes], options: Options, name: str) -> DecodedAudio:
        began: list[float] = []  # when decoding began: after the wait for a decoding thread

        def decode() -> DecodedAudio:
            began.append(time.perf_counter())
            return decode_audio(source, max_seconds=self.max_seconds(options.mode), name=name)

        try:
            if is_plain_wav(source, max_bytes=2 * ON_LOOP_SAMPLES + _SMALL_HEADER):
                audio = decode()
            else:
                size = source.seek(0, 2)
                source.seek(0)
                audio = await self.decoders.run(size, decode)
        except GatewayError as error:
            self._metrics.decodes.labels(status="failed").inc()
            if isinstance(error, AudioTooLong) and options.mode is Mode.FULL:
                raise self._chunked_instead(error, options) from None
            raise
        self._metrics.decodes.labels(status="success").inc()
        self._metrics.decode_seconds.observe(time.perf_counter() - began[0])
        return audio

    def _chunked_instead(self, error: AudioTooLong, options: Options) -> AudioTooLong:
        """Too long for full mode: say how to ask for chunked mode, where it fits."""
        most = self.settings.max_chunked_seconds
        if most <= self.settings.max_full_seconds:
            return error
        how = "process_type=chunked" if options.route == "reference" else "chunking_strategy=auto"
        return AudioTooLong(
            f"{error.message} Chunked mode ({how}) takes up to {most:.0f} s.", seconds=error.seconds, param=error.param
        )

    async def transcribe(self, source: IO[bytes], options: Options, *, name: str = "file") -> Transcript:
        """The whole transcript at once."""
        # closed here, not left to the garbage collector: its finalizer wakes the loop and runs a task
        async with contextlib.aclosing(self.run(source, options, name=name)) as events:
            async for event in events:
                if isinstance(event, Finished):
                    return event.transcript
        raise AssertionError("the run ended without a transcript")

    @staticmethod
    def _log_end(
        options: Options,
        audio: DecodedAudio | None,
        pieces: int,
        outcomes: list[PieceOutcome],
        timings: dict[str, float],
        started: float,
        error: GatewayError | None,
    ) -> None:
        if not log.isEnabledFor(logging.INFO):  # building the fields costs more than the call
            return
        failed = [o.piece.index for o in outcomes if o.error is not None]
        log.info(
            "transcription failed" if error else "transcription done",
            extra={
                "request_id": options.request_id,
                "route": options.route,
                "mode": options.mode.value,
                "audio_seconds": _audio_seconds(audio, error),
                "pieces": pieces,
                "failed_pieces": failed,
                "timings": {k: round(v, 4) for k, v in timings.items()},
                "total_seconds": round(time.perf_counter() - started, 4),
                "error_code": error.code if error else ("ASR-6030" if failed else None),
                "error": error.message if error else None,
            },
        )


def _audio_seconds(audio: DecodedAudio | None, error: GatewayError | None) -> float | None:
    """The audio's length for the log: decoded, or as far as a too-long file was read."""
    if audio is not None:
        return round(audio.duration, 3)
    return round(error.seconds, 3) if isinstance(error, AudioTooLong) else None
