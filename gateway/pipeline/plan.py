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


@dataclass(frozen=True)
class Piece:
    """A slice of the audio, in samples."""

    index: int
    start: int
    end: int

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
    return [Piece(0, 0, len(samples))]


def plan_chunked(samples: np.ndarray, chunk_seconds: float) -> list[Piece]:
    """Pieces of at most ``chunk_seconds``, cut at quiet points.

    Audio no longer than one chunk is never split.
    """
    limit = int(chunk_seconds * SAMPLE_RATE)
    if len(samples) <= limit:
        return plan_full(samples)
    loudness = _smoothed_loudness(samples)
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
    return [Piece(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


def _smoothed_loudness(samples: np.ndarray) -> np.ndarray:
    """Mean energy per 10 ms frame, averaged over a 200 ms window centred on it."""
    frames = len(samples) // FRAME
    pcm = samples[: frames * FRAME].astype(np.float32).reshape(frames, FRAME)
    energy = np.einsum("ij,ij->i", pcm, pcm) / FRAME
    kernel = np.ones(SMOOTHING_FRAMES, dtype=np.float32) / SMOOTHING_FRAMES
    return np.convolve(energy, kernel, mode="same")
