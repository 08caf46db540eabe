"""The planner cuts at quiet points, never inside speech, and never splits short audio."""

from __future__ import annotations

import itertools

import numpy as np

from gateway.pipeline.plan import SAMPLE_RATE, plan_chunked, plan_full
from tests.corpus import build_long_input


def test_short_audio_is_one_piece() -> None:
    samples = np.ones(29 * SAMPLE_RATE, dtype=np.int16)
    assert len(plan_chunked(samples, 30)) == 1
    assert plan_full(samples)[0].end == len(samples)


def test_pieces_are_contiguous_bounded_and_cut_in_silence() -> None:
    long_input = build_long_input(300, seed=5)
    pieces = plan_chunked(long_input.samples, 30)
    assert pieces[0].start == 0
    assert pieces[-1].end == len(long_input.samples)
    for before, after in itertools.pairwise(pieces):
        assert before.end == after.start, "no gap, no overlap"
    for piece in pieces:
        assert 0 < piece.seconds <= 30
    for piece in pieces[:-1]:
        cut = piece.end / SAMPLE_RATE
        inside = [u for u in long_input.utterances if u.start < cut < u.end]
        assert not inside, f"cut at {cut:.2f} s is inside {inside[0].clip.reference!r}"
    assert len(pieces) <= int(long_input.duration // 20) + 1, "cuts go late in their window, so pieces stay long"


def test_cut_goes_in_the_middle_of_the_pause() -> None:
    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(40 * SAMPLE_RATE) * 3000).astype(np.int16)
    speech[25 * SAMPLE_RATE : 27 * SAMPLE_RATE] = 0  # the only pause before the 30 s mark
    (first, second) = plan_chunked(speech, 30)
    assert abs(first.end / SAMPLE_RATE - 26.0) < 0.15
    assert second.start == first.end


def test_continuous_sound_still_cuts_within_the_limit() -> None:
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(95 * SAMPLE_RATE) * 3000).astype(np.int16)
    pieces = plan_chunked(noise, 30)
    assert all(p.seconds <= 30 for p in pieces)
    assert sum(p.end - p.start for p in pieces) == len(noise)


def test_pieces_know_where_their_sound_is() -> None:
    """A backend without times (Qwen3-ASR) gets each piece's sound as its segment."""
    long_input = build_long_input(100, seed=8)
    for piece in plan_chunked(long_input.samples, 30):
        inside = [u for u in long_input.utterances if piece.start / SAMPLE_RATE <= u.start < piece.end / SAMPLE_RATE]
        assert inside
        assert abs(piece.speech_start / SAMPLE_RATE - inside[0].speech_start) < 0.3
        assert abs(piece.speech_end / SAMPLE_RATE - inside[-1].end) < 0.4
