"""Merge: piece results into one transcript, times shifted back into the original audio."""

from __future__ import annotations

from collections import Counter

from compat.errors import GatewayError
from compat.transcript import Segment, Transcript, Word
from gateway.backends.base import PieceSegment
from gateway.pipeline.plan import SAMPLE_RATE
from gateway.pipeline.run import PieceOutcome


def merge(outcomes: list[PieceOutcome], *, duration: float, with_words: bool) -> Transcript:
    """One transcript from the pieces' outcomes, in order.

    Segment times are the backend's, shifted by their piece's real offset (never
    ``index x chunk``), clamped into the piece and made monotonic. A backend with
    no times gives one segment per piece, spanning it.

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
        low, high = piece.offset, piece.offset + piece.seconds
        if result.text.strip():
            texts.append(result.text.strip())
        if result.language:
            heard[result.language] += piece.end - piece.start
        raw = result.segments
        if raw is None:  # a backend without times (Qwen3-ASR): the piece's sound is the segment
            speech_start = (piece.speech_start - piece.start) / SAMPLE_RATE
            speech_end = (piece.speech_end - piece.start) / SAMPLE_RATE
            raw = (PieceSegment(start=speech_start, end=max(speech_end, speech_start), text=result.text),)
        for s in raw:
            if not s.text.strip():
                continue
            start = min(max(low + s.start, low, last_end), high)
            end = min(max(low + s.end, start), high)
            segment_words = None
            if with_words and s.words is not None:
                segment_words = [
                    Word(
                        word=w.word,
                        start=min(max(low + w.start, start), end),
                        end=min(max(low + w.end, start), end),
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
        text=" ".join(texts),
        language=heard.most_common(1)[0][0] if heard else None,
        duration=duration,
        segments=segments,
        words=words if with_words else None,
        failed_pieces=[o.piece.index for o in outcomes if o.result is None],
        pieces=len(outcomes),
    )
