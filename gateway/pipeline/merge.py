"""Merge: piece results into one transcript, times mapped back into the original audio."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter

import numpy as np

from compat.errors import GatewayError
from compat.transcript import Segment, Transcript, Word
from gateway.backends.base import PieceSegment
from gateway.pipeline.plan import SAMPLE_RATE, locate_speech
from gateway.pipeline.run import PieceOutcome

# Scripts written without spaces between words, and the full-width punctuation that goes with them: two pieces'
# texts meet without a space there (Qwen3-ASR writes Chinese as "今天天气很好", not "今天 天气很好").
_UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3000, 0x30FF),  # CJK punctuation, Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0xFF00, 0xFFEF),  # full-width and half-width forms
    (0x20000, 0x3FFFF),  # CJK Extensions B and after
)
_CLOSING = set("。，、！？：；）」』】〉》…")  # punctuation that never opens a piece's text after a space


def _unspaced(character: str) -> bool:
    code = ord(character)
    return any(low <= code <= high for low, high in _UNSPACED)


def separator(left: str, right: str) -> str:
    """What goes between two pieces' texts (stripped): a space, but none between scripts written without one."""
    if not left or not right:
        return ""
    if right[0] in _CLOSING or (_unspaced(left[-1]) and _unspaced(right[0])):
        return ""
    return " "


def joined(texts: list[str]) -> str:
    """The pieces' texts (stripped) as one text."""
    if not texts:
        return ""
    return texts[0] + "".join(separator(left, right) + right for left, right in itertools.pairwise(texts))


def unlocated_timeless(outcomes: list[PieceOutcome]) -> list[int]:
    """Where a backend without times answered for a piece whose sound is not located yet."""
    return [
        i for i, o in enumerate(outcomes) if o.result is not None and o.result.segments is None and not o.piece.located
    ]


def locate_timeless(outcomes: list[PieceOutcome], samples: np.ndarray) -> list[PieceOutcome]:
    """The outcomes with the speech located in each piece a backend without times answered.

    That piece's segment is where its sound is; this reads the loudness of the whole
    audio, so it is done only for a response that shows times.
    """
    timeless = unlocated_timeless(outcomes)
    if not timeless:
        return outcomes
    located = list(outcomes)
    pieces = locate_speech([outcomes[i].piece for i in timeless], samples)
    for i, piece in zip(timeless, pieces, strict=True):
        located[i] = dataclasses.replace(outcomes[i], piece=piece)
    return located


def merge(outcomes: list[PieceOutcome], *, duration: float, with_words: bool) -> Transcript:
    """One transcript from the pieces' outcomes, in order.

    Segment times are the backend's, mapped back through their piece's spans (never
    ``index x chunk``), clamped into the piece and made monotonic. A backend with
    no times gives one segment per piece, where its sound is once located
    (``locate_timeless``), else spanning the piece.

    Raises:
        GatewayError: every piece failed (the first piece's error).
    """
    succeeded = [o for o in outcomes if o.result is not None]
    if not succeeded:
        first = next((o.error for o in outcomes if o.error is not None), None)
        raise first or GatewayError("No piece was transcribed.")

    segments: list[Segment] = []
    words: list[Word] = []
    texts: list[str] = []
    heard: Counter[str] = Counter()
    last_end = 0.0
    for outcome in succeeded:
        result = outcome.result
        assert result is not None
        piece = outcome.piece
        low, high = piece.start / SAMPLE_RATE, piece.end / SAMPLE_RATE
        if result.text.strip():
            texts.append(result.text.strip())
        if result.language:
            heard[result.language] += piece.end - piece.start
        if result.segments is None:  # a backend without times (Qwen3-ASR): the piece's sound is the segment
            sound_start, sound_end = piece.speech
            timed = [(sound_start / SAMPLE_RATE, sound_end / SAMPLE_RATE, PieceSegment(0, 0, result.text))]
        else:
            timed = [(piece.to_original(s.start), piece.to_original(s.end, end=True), s) for s in result.segments]
        for raw_start, raw_end, s in timed:
            if not s.text.strip():
                continue
            start = min(max(raw_start, low, last_end), high)
            end = min(max(raw_end, start), high)
            segment_words = None
            if with_words and s.words is not None:
                segment_words = [
                    Word(
                        word=w.word,
                        start=min(max(piece.to_original(w.start), start), end),
                        end=min(max(piece.to_original(w.end, end=True), start), end),
                        probability=w.probability,
                    )
                    for w in s.words
                ]
                words.extend(segment_words)
            segments.append(
                Segment(
                    id=len(segments),
                    start=start,
                    end=end,
                    text=s.text,
                    seek=round(low * 100) + s.seek,
                    tokens=list(s.tokens),
                    temperature=s.temperature,
                    avg_logprob=s.avg_logprob,
                    compression_ratio=s.compression_ratio,
                    no_speech_prob=s.no_speech_prob,
                    words=segment_words,
                )
            )
            last_end = end
    return Transcript(
        text=joined(texts),
        language=heard.most_common(1)[0][0] if heard else None,
        duration=duration,
        segments=segments,
        words=words if with_words else None,
        failed_pieces=[o.piece.index for o in outcomes if o.result is None],
        pieces=len(outcomes),
    )
