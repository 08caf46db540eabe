"""The one transcript value that the pipeline produces and every renderer takes."""

from __future__ import annotations

import msgspec


class Word(msgspec.Struct, frozen=True):
    """A word and where it was said, in seconds from the start of the audio."""

    word: str
    start: float
    end: float
    probability: float | None = None


class Segment(msgspec.Struct, frozen=True):
    """A stretch of speech, in seconds from the start of the audio.

    The decoding statistics are Whisper's; a backend that has none (Qwen3-ASR)
    leaves their neutral values.
    """

    id: int
    start: float
    end: float
    text: str
    seek: int = 0
    tokens: list[int] = msgspec.field(default_factory=list)
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: list[Word] | None = None


class Transcript(msgspec.Struct, frozen=True):
    """Everything a route can render.

    Attributes:
        text: the whole transcript.
        language: ISO 639-1 code of the language heard (or forced), if known.
        duration: length of the audio in seconds.
        segments: in order, within ``[0, duration]``.
        words: every word with its time, only when asked for and the backend has them.
        failed_pieces: indexes of pieces that failed after their retry (partial result).
        pieces: how many pieces the audio was cut into.
    """

    text: str
    language: str | None
    duration: float
    segments: list[Segment]
    words: list[Word] | None = None
    failed_pieces: list[int] = msgspec.field(default_factory=list)
    pieces: int = 1

    @property
    def partial(self) -> bool:
        """Whether some pieces are missing from the text."""
        return bool(self.failed_pieces)
