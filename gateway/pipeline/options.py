"""What a route asks the pipeline for, whatever the route."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """How the audio is processed."""

    FULL = "full"
    CHUNKED = "chunked"


@dataclass(frozen=True)
class Options:
    """One transcription request, route-independent.

    Attributes:
        mode: full (one piece) or chunked (pieces in parallel).
        request_id: trace id for logs and the response.
        language: ISO 639-1 code to force, or None to detect.
        prompt: context text for the model.
        temperature: None for greedy decoding with fallback.
        word_timestamps: whether word times are wanted.
        segment_times: whether the response shows segment times; when not, the sound of a
            piece a backend without times answered is not located (its segment spans the piece).
        task: ``transcribe``, or ``translate`` into English.
        route: the route family (``reference``, ``openai``), for logs.
        path: the URL path, the ``path`` label of the metrics.
    """

    mode: Mode
    request_id: str
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    word_timestamps: bool = False
    segment_times: bool = True
    task: str = "transcribe"
    route: str = ""
    path: str = ""
