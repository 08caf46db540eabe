"""Plan: which stretches of the audio each piece holds.

Chunked mode first shortens long pauses: of a quiet stretch of 0.4 s or more, only
0.15 s at each end is kept, so a piece holds more speech and fewer 30 s windows are
decoded (on the 10-minute corpus file, 13 % less audio). What is left is a list of
spans; pieces take whole spans up to ``chunk_seconds``, so they meet at pauses, and
a span longer than that is cut at its quietest point near the limit, so no word is
cut in two. Pieces do not overlap, so no word can be heard twice. Each piece knows
its spans, so every time the backend reports maps back to the original audio
exactly (``Piece.to_original``).

Full mode sends the audio as it is (one span), as faster-whisper would decode it.

Where a piece's sound starts and ends (its speech bounds) is the segment a backend
without times (Qwen3-ASR) gets. Chunked pieces come with theirs (the loudness is at
hand); a full piece's are located only when a response shows times (``locate_speech``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 160  # 10 ms
SMOOTHING_FRAMES = 20  # 200 ms: a cut needs a pause at least this long to look quiet
SEARCH_SECONDS = 10.0  # how far back from each mark a cut may go
SPEECH_BELOW_PEAK_DB = 30.0  # sound within 30 dB of a piece's loudest stretch counts as its speech
LONG_PAUSE_FRAMES = 40  # quiet stretches of 0.4 s or more are shortened...
PAUSE_KEPT_FRAMES = 15  # ...to 0.15 s at each end (soft word endings are quiet too)
QUIET_ABOVE_NOISE_DB = 10.0  # quiet: within 10 dB of the noise floor...
QUIET_BELOW_SPEECH_DB = 35.0  # ...or 35 dB under the speech level, whichever is louder...
QUIET_NEVER_ABOVE_DB = 20.0  # ...but never within 20 dB of the speech level

Span = tuple[int, int]  # samples [start, end) of the original audio


@dataclass(frozen=True)
class Piece:
    """Stretches of the audio sent to the backend as one, back to back.

    Attributes:
        index: its place in the request.
        spans: the original sample ranges it holds, in order.
        sound: where its sound starts and ends (samples, original audio); None until located.
    """

    index: int
    spans: tuple[Span, ...]
    sound: Span | None = None

    @property
    def located(self) -> bool:
        """Whether its speech bounds are known."""
        return self.sound is not None

    @property
    def speech(self) -> Span:
        """Where its sound starts and ends (samples, original audio) once located; else all it holds."""
        return self.sound or (self.start, self.end)

    @property
    def start(self) -> int:
        """First sample it holds."""
        return self.spans[0][0]

    @property
    def end(self) -> int:
        """One past the last sample it holds."""
        return self.spans[-1][1]

    @property
    def offset(self) -> float:
        """Where it starts, in seconds of the original audio."""
        return self.start / SAMPLE_RATE

    @property
    def seconds(self) -> float:
        """Length of what it holds (what the backend hears), in seconds."""
        return sum(b - a for a, b in self.spans) / SAMPLE_RATE

    @property
    def joins(self) -> tuple[float, ...]:
        """Seconds into its audio where two spans meet that are apart in the original (a pause taken out)."""
        joins = []
        elapsed = 0
        for (a, b), (following, _) in itertools.pairwise(self.spans):
            elapsed += b - a
            if following != b:
                joins.append(elapsed / SAMPLE_RATE)
        return tuple(joins)

    def audio(self, samples: np.ndarray) -> np.ndarray:
        """Its spans of ``samples``, back to back."""
        if len(self.spans) == 1:
            return samples[self.start : self.end]
        return np.concatenate([samples[a:b] for a, b in self.spans])

    def to_original(self, seconds: float, *, end: bool = False) -> float:
        """A time in the piece's audio as a time in the original audio.

        Args:
            seconds: from the start of the piece's audio.
            end: a time at a joint between spans is the end of the earlier span
                (for the end of a segment), else the start of the later one.
        """
        position = round(seconds * SAMPLE_RATE)  # in samples: joints compare exactly
        elapsed = 0
        for a, b in self.spans:
            length = b - a
            if position < elapsed + length or (end and position <= elapsed + length):
                return (a + max(0, position - elapsed)) / SAMPLE_RATE
            elapsed += length
        return self.end / SAMPLE_RATE


def plan_full(samples: np.ndarray) -> list[Piece]:
    """One piece: the whole audio, unchanged (its speech not located: ``locate_speech``)."""
    return [Piece(0, ((0, len(samples)),))]


def locate_speech(pieces: list[Piece], samples: np.ndarray) -> list[Piece]:
    """The pieces with their speech bounds; those that know theirs are kept as they are.

    Args:
        pieces: pieces of ``samples``.
        samples: the request's whole audio.
    """
    if all(piece.located for piece in pieces):
        return pieces
    loudness = _smoothed_loudness(samples)
    return [piece if piece.located else _with_speech_bounds(piece, loudness) for piece in pieces]


def plan_chunked(samples: np.ndarray, chunk_seconds: float) -> list[Piece]:
    """Pieces of at most ``chunk_seconds`` of audio, long pauses shortened, cut at pauses.

    Audio no longer than one chunk is never split.
    """
    limit = int(chunk_seconds * SAMPLE_RATE)
    loudness = _smoothed_loudness(samples)
    spans = []
    for span in _kept_spans(loudness, len(samples)):
        spans.extend(_split_long(span, loudness, limit))
    pieces: list[list[Span]] = [[]]
    held = 0
    for span in spans:
        length = span[1] - span[0]
        if pieces[-1] and held + length > limit:
            pieces.append([])
            held = 0
        pieces[-1].append(span)
        held += length
    return [_with_speech_bounds(Piece(i, tuple(p)), loudness) for i, p in enumerate(pieces)]


def _kept_spans(loudness: np.ndarray, total: int) -> list[Span]:
    """The audio less the middles of its long pauses."""
    quiet = np.concatenate(([False], loudness < _quiet_level(loudness), [False]))
    edges = np.flatnonzero(np.diff(quiet.view(np.int8)))  # quiet runs as [start, end) frame pairs
    spans: list[Span] = []
    start = 0
    for run_start, run_end in edges.reshape(-1, 2).tolist():
        if run_end - run_start >= LONG_PAUSE_FRAMES:
            cut_from = (run_start + PAUSE_KEPT_FRAMES) * FRAME
            resume = min(total, (run_end - PAUSE_KEPT_FRAMES) * FRAME)
            if cut_from > start:
                spans.append((start, cut_from))
            start = resume
    if start < total:
        spans.append((start, total))
    return spans or [(0, total)]


def _quiet_level(loudness: np.ndarray) -> float:
    noise = float(np.percentile(loudness, 10))
    speech = float(np.percentile(loudness, 95))
    level = max(noise * 10 ** (QUIET_ABOVE_NOISE_DB / 10), speech * 10 ** (-QUIET_BELOW_SPEECH_DB / 10))
    # never within 20 dB of the speech: in audio with no pause at all, the noise floor is the speech
    return max(min(level, speech * 10 ** (-QUIET_NEVER_ABOVE_DB / 10)), 1e-9)


def _split_long(span: Span, loudness: np.ndarray, limit: int) -> list[Span]:
    """A span longer than ``limit`` cut at the quietest point in the last stretch before each limit."""
    start, end = span
    search = min(int(SEARCH_SECONDS * SAMPLE_RATE), limit // 2)
    cuts = [start]
    while end - cuts[-1] > limit:
        begin = cuts[-1]
        high = (begin + limit) // FRAME  # last frame that may end the piece
        low = max(begin // FRAME + 1, (begin + limit - search) // FRAME)
        window = loudness[low:high]
        quietest = float(window.min())
        # Frames as quiet as the quietest (within 1 %) form pauses; cut in the middle
        # of the latest one, which keeps pieces long and the cut away from both words.
        quiet = np.flatnonzero(window <= quietest * 1.01 + 1e-9)
        breaks = np.flatnonzero(np.diff(quiet) > 1)
        pause_start = quiet[breaks[-1] + 1] if len(breaks) else quiet[0]
        middle = (int(pause_start) + int(quiet[-1])) // 2
        cuts.append((low + middle) * FRAME)
    cuts.append(end)
    return list(itertools.pairwise(cuts))


def _with_speech_bounds(piece: Piece, loudness: np.ndarray) -> Piece:
    """The piece with where its sound starts and ends: a backend without times gets that as its segment."""
    spans = [(a // FRAME, min(len(loudness), max(a // FRAME + 1, b // FRAME))) for a, b in piece.spans]
    spans = [(a, b) for a, b in spans if b > a]
    peak = max((float(loudness[a:b].max()) for a, b in spans), default=0.0)
    if peak <= 0:
        return Piece(piece.index, piece.spans, sound=(piece.start, piece.end))
    threshold = peak * 10 ** (-SPEECH_BELOW_PEAK_DB / 10)  # within 30 dB of the piece's loudest
    first = next(a + int(np.argmax(loudness[a:b] >= threshold)) for a, b in spans if loudness[a:b].max() >= threshold)
    last = next(
        b - 1 - int(np.argmax(loudness[a:b][::-1] >= threshold))
        for a, b in reversed(spans)
        if loudness[a:b].max() >= threshold
    )
    half = SMOOTHING_FRAMES // 2  # the smoothing spread the sound by half its window
    start = max(piece.start, (first - half) * FRAME)
    end = min(piece.end, (last + half + 1) * FRAME)
    return Piece(piece.index, piece.spans, sound=(start, max(end, start)))


def _smoothed_loudness(samples: np.ndarray) -> np.ndarray:
    """Mean energy per 10 ms frame, averaged over a 200 ms window centred on it."""
    frames = len(samples) // FRAME
    pcm = samples[: frames * FRAME].astype(np.float32).reshape(frames, FRAME)
    energy = np.einsum("ij,ij->i", pcm, pcm) / FRAME
    kernel = np.ones(SMOOTHING_FRAMES, dtype=np.float32) / SMOOTHING_FRAMES
    return np.convolve(energy, kernel, mode="same")
