"""Plan: where the audio is cut into pieces.

A cut goes at the quietest point in the last stretch before each ``chunk_seconds``
mark: the middle of the longest, quietest pause there, so no word is cut in two.
Pieces are contiguous and do not overlap, so no word can be heard twice; each
remembers its offset, so every time the backend reports maps back exactly.
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


@dataclass(frozen=True)
class Piece:
    """A slice of the audio, in samples; ``speech_start``/``speech_end``: where its sound begins and ends."""

    index: int
    start: int
    end: int
    speech_start: int = 0
    speech_end: int = 0

    @property
    def offset(self) -> float:
        """Start in seconds from the beginning of the audio."""
        return self.start / SAMPLE_RATE

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return (self.end - self.start) / SAMPLE_RATE


def plan_full(samples: np.ndarray) -> list[Piece]:
    """One piece: the whole audio."""
    return [_with_speech_bounds(Piece(0, 0, len(samples)), _smoothed_loudness(samples))]


def plan_chunked(samples: np.ndarray, chunk_seconds: float) -> list[Piece]:
    """Pieces of at most ``chunk_seconds``, cut at quiet points.

    Audio no longer than one chunk is never split.
    """
    limit = int(chunk_seconds * SAMPLE_RATE)
    loudness = _smoothed_loudness(samples)
    if len(samples) <= limit:
        return [_with_speech_bounds(Piece(0, 0, len(samples)), loudness)]
    search = min(int(SEARCH_SECONDS * SAMPLE_RATE), limit // 2)
    cuts = [0]
    while len(samples) - cuts[-1] > limit:
        start = cuts[-1]
        high = (start + limit) // FRAME  # last frame that may end the piece
        low = max(start // FRAME + 1, (start + limit - search) // FRAME)
        window = loudness[low:high]
        quietest = float(window.min())
        # Frames as quiet as the quietest (within 1 %) form pauses; cut in the middle
        # of the latest one, which keeps pieces long and the cut away from both words.
        quiet = np.flatnonzero(window <= quietest * 1.01 + 1e-9)
        breaks = np.flatnonzero(np.diff(quiet) > 1)
        pause_start = quiet[breaks[-1] + 1] if len(breaks) else quiet[0]
        middle = (int(pause_start) + int(quiet[-1])) // 2
        cuts.append((low + middle) * FRAME)
    cuts.append(len(samples))
    return [_with_speech_bounds(Piece(i, a, b), loudness) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


def _with_speech_bounds(piece: Piece, loudness: np.ndarray) -> Piece:
    """The piece with where its sound starts and ends: a backend without times gets that as its segment."""
    frames = loudness[piece.start // FRAME : max(piece.start // FRAME + 1, piece.end // FRAME)]
    if len(frames) == 0 or float(frames.max()) <= 0:
        return Piece(piece.index, piece.start, piece.end, piece.start, piece.end)
    # within 30 dB of the piece's loudest 200 ms is sound; half the smoothing window is given back at each end
    loud = np.flatnonzero(frames >= float(frames.max()) * 10 ** (-SPEECH_BELOW_PEAK_DB / 10))
    half = SMOOTHING_FRAMES // 2
    first = max(0, int(loud[0]) - half)
    last = min(len(frames), int(loud[-1]) + half + 1)
    return Piece(
        piece.index,
        piece.start,
        piece.end,
        speech_start=piece.start + first * FRAME,
        speech_end=min(piece.end, piece.start + last * FRAME),
    )


def _smoothed_loudness(samples: np.ndarray) -> np.ndarray:
    """Mean energy per 10 ms frame, averaged over a 200 ms window centred on it."""
    frames = len(samples) // FRAME
    pcm = samples[: frames * FRAME].astype(np.float32).reshape(frames, FRAME)
    energy = np.einsum("ij,ij->i", pcm, pcm) / FRAME
    kernel = np.ones(SMOOTHING_FRAMES, dtype=np.float32) / SMOOTHING_FRAMES
    return np.convolve(energy, kernel, mode="same")
