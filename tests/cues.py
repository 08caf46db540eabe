"""Subtitle files read back with independent parsers (``srt``, ``webvtt-py``): each cue's start, end and text."""

from __future__ import annotations

import srt
import webvtt

Cue = tuple[float, float, str]


def read_cues(body: str, response_format: str) -> list[Cue]:
    """The cues of an SRT or WebVTT body, in seconds; SRT cues must be numbered 1, 2, ..."""
    if response_format == "srt":
        cues = list(srt.parse(body, ignore_errors=False))
        assert [c.index for c in cues] == list(range(1, len(cues) + 1))
        return [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues]
    return [
        (
            c.start_in_seconds + c.start_time.milliseconds / 1000,
            c.end_in_seconds + c.end_time.milliseconds / 1000,
            c.text,
        )
        for c in webvtt.from_string(body)
    ]
