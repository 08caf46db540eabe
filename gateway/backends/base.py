"""The small contract every backend keeps: one piece of PCM in, what was heard out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from compat.transcript import Word


@dataclass(frozen=True)
class PieceRequest:
    """One piece to transcribe.

    Attributes:
        samples: 16-bit PCM (int16), 16 kHz mono, only this piece: often a view of the
            request's audio, so never written to. A backend that needs floats makes them
            with ``float32`` in its own thread, off the event loop.
        language: ISO 639-1 code to force, or None to detect.
        prompt: context text for the model.
        temperature: None for the backend's default (greedy with fallback).
        word_timestamps: whether word times are wanted.
        task: ``transcribe``, or ``translate`` into English.
        request_id: the request's trace id, for the backend's logs.
        index: the piece's place in its request.
        joins: seconds into the piece where two stretches of the original audio meet, a
            long pause taken out between them (chunked mode): a backend with times lets no
            segment span one.
        deadline: the event loop's time (``loop.time()``) at which the caller stops waiting
            (the piece's timeout): a call cancelled then was too slow, not left by its client.
    """

    samples: np.ndarray
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    word_timestamps: bool = False
    task: str = "transcribe"
    request_id: str = ""
    index: int = 0
    joins: tuple[float, ...] = ()
    deadline: float | None = None

    @property
    def seconds(self) -> float:
        """Length of the piece."""
        return len(self.samples) / 16_000

    def float32(self) -> np.ndarray:
        """The samples as float32 in [-1, 1) (a new array)."""
        return self.samples.astype(np.float32) / np.float32(32768.0)


@dataclass(frozen=True)
class PieceSegment:
    """A segment with times in seconds from the start of its piece (``seek``: its window, in 10 ms frames)."""

    start: float
    end: float
    text: str
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] | None = None


@dataclass(frozen=True)
class PieceResult:
    """What the backend heard in one piece.

    Attributes:
        text: the piece's transcript.
        language: ISO 639-1 code heard (or forced), if the backend says.
        segments: the backend's own timed segments, or None when it has no times.
    """

    text: str
    language: str | None
    segments: tuple[PieceSegment, ...] | None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, checked before any work is spent.

    Attributes:
        languages: ISO 639-1 codes it can transcribe; None means any.
        word_timestamps: whether it has real word times.
        translation: whether it can translate into English.
    """

    languages: frozenset[str] | None
    word_timestamps: bool
    translation: bool


@dataclass(frozen=True)
class ReplicaLoad:
    """One replica's state, for the metrics: pieces in flight to it, and whether it answers."""

    replica: str
    in_flight: int
    up: bool


class Backend(Protocol):
    """A speech-to-text engine behind the pipeline."""

    @property
    def model_id(self) -> str:
        """The id of the served model."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What it can do."""
        ...

    async def start(self) -> None:
        """Load models or open clients; called once in the app's lifespan."""
        ...

    async def close(self) -> None:
        """Release everything ``start`` took."""
        ...

    async def healthy(self) -> bool:
        """Whether it can transcribe now."""
        ...

    def load(self) -> list[ReplicaLoad]:
        """Pieces in flight to each replica (read when metrics are scraped; never blocks)."""
        ...

    async def transcribe(self, piece: PieceRequest) -> PieceResult:
        """Transcribe one piece.

        Raises:
            GatewayError: a backend error of the catalogue (ASR-600x).
        """
        ...
