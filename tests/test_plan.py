"""The planner cuts at quiet points, never inside speech, and never splits short audio."""

from __future__ import annotations

import itertools

import numpy as np

from gateway.backends.base import PieceResult
from gateway.pipeline.merge import joined, locate_timeless, merge, separator
from gateway.pipeline.plan import SAMPLE_RATE, Piece, locate_speech, plan_chunked, plan_full
from gateway.pipeline.run import PieceOutcome
from tests.corpus import build_long_input


def assert_quiet(samples: np.ndarray, start: int, end: int) -> None:
    """What a plan leaves out is at least 30 dB under the speech (room noise at the clips' edges at most)."""
    energy = float(np.mean(samples[start:end].astype(np.float64) ** 2)) if end > start else 0.0
    speech = float(np.percentile(samples.astype(np.float64) ** 2, 95))
    assert energy < speech * 1e-3, f"left out [{start / SAMPLE_RATE:.2f}, {end / SAMPLE_RATE:.2f}) is not quiet"


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
        assert before.end <= after.start, "no overlap"
        assert_quiet(long_input.samples, before.end, after.start)
    for piece in pieces:
        assert 0 < piece.seconds <= 30
        for (_, end), (start, _) in itertools.pairwise(piece.spans):
            assert_quiet(long_input.samples, end, start)
    for piece in pieces[:-1]:
        cut = piece.end / SAMPLE_RATE
        inside = [u for u in long_input.utterances if u.speech_start < cut < u.speech_end]
        assert not inside, f"cut at {cut:.2f} s is inside {inside[0].clip.reference!r}"
    assert len(pieces) <= int(long_input.duration // 25) + 1, "pieces stay long: long pauses are shortened"
    kept = sum(p.seconds for p in pieces)
    assert kept < 0.9 * long_input.duration


def test_cut_goes_in_the_middle_of_the_pause() -> None:
    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(40 * SAMPLE_RATE) * 3000).astype(np.int16)
    speech[25 * SAMPLE_RATE : 27 * SAMPLE_RATE] = 0  # the only pause before the 30 s mark
    (first, second) = plan_chunked(speech, 30)
    assert 25.1 <= first.end / SAMPLE_RATE <= 25.4, "a long pause keeps a little silence at each end"
    assert 26.6 <= second.start / SAMPLE_RATE <= 26.95


def test_continuous_sound_still_cuts_within_the_limit() -> None:
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(95 * SAMPLE_RATE) * 3000).astype(np.int16)
    pieces = plan_chunked(noise, 30)
    assert all(p.seconds <= 30 for p in pieces)
    assert sum(p.end - p.start for p in pieces) == len(noise), "no pause: nothing is left out"


def test_times_map_back_through_the_spans() -> None:
    samples = np.zeros(60 * SAMPLE_RATE, dtype=np.int16)
    rng = np.random.default_rng(2)
    for start in (1, 12, 40):  # three 5 s utterances with long pauses between them
        samples[start * SAMPLE_RATE : (start + 5) * SAMPLE_RATE] = rng.integers(-3000, 3000, 5 * SAMPLE_RATE)
    (piece,) = plan_chunked(samples, 30)
    assert len(piece.spans) == 5, "a little of the leading pause, three utterances, a little of the trailing"
    assert piece.seconds < 20
    audio = piece.audio(samples)
    assert len(audio) == round(piece.seconds * SAMPLE_RATE)
    # every sample the backend hears is where to_original says it is
    for index in rng.integers(0, len(audio), 200):
        assert audio[index] == samples[round(piece.to_original(index / SAMPLE_RATE) * SAMPLE_RATE)]
    joint = sum(b - a for a, b in piece.spans[:2]) / SAMPLE_RATE
    assert piece.to_original(joint) == piece.spans[2][0] / SAMPLE_RATE, "a start at a joint: the later span"
    assert piece.to_original(joint, end=True) == piece.spans[1][1] / SAMPLE_RATE, "an end: the earlier span"
    assert piece.joins == tuple(sum(b - a for a, b in piece.spans[:i]) / SAMPLE_RATE for i in range(1, 5))
    for join in piece.joins:  # each a place where the original audio jumps
        assert piece.to_original(join) > piece.to_original(join, end=True)


def test_spans_that_meet_in_the_original_are_no_join() -> None:
    piece = Piece(0, ((0, 16_000), (32_000, 48_000), (48_000, 56_000)))
    assert piece.joins == (1.0,)


def test_pieces_know_where_their_sound_is() -> None:
    """A backend without times (Qwen3-ASR) gets each piece's sound as its segment."""
    long_input = build_long_input(100, seed=8)
    for piece in plan_chunked(long_input.samples, 30):
        inside = [u for u in long_input.utterances if piece.start / SAMPLE_RATE <= u.start < piece.end / SAMPLE_RATE]
        assert inside
        assert piece.located, "chunked pieces come located: the loudness was read to cut them"
        sound_start, sound_end = piece.speech
        assert abs(sound_start / SAMPLE_RATE - inside[0].speech_start) < 0.3
        assert abs(sound_end / SAMPLE_RATE - inside[-1].speech_end) < 0.4


def test_a_full_piece_is_located_only_when_asked() -> None:
    """Full mode reads nothing to plan; its sound is found for a response that shows times."""
    long_input = build_long_input(60, seed=8)
    (piece,) = plan_full(long_input.samples)
    assert not piece.located
    assert piece.speech == (0, len(long_input.samples)), "unlocated: all it holds"
    (located,) = locate_speech([piece], long_input.samples)
    sound_start, sound_end = located.speech
    assert abs(sound_start / SAMPLE_RATE - long_input.utterances[0].speech_start) < 0.3
    assert abs(sound_end / SAMPLE_RATE - long_input.utterances[-1].speech_end) < 0.4
    assert sound_start > 0.5 * SAMPLE_RATE, "the clip opens with a pause: the sound starts after it"
    assert locate_speech([located], long_input.samples)[0] is located, "a located piece is kept"


def test_a_timeless_segment_is_the_sound_only_where_times_are_shown() -> None:
    """Merging a backend's answer without times: at the piece's sound once located, else the piece."""
    long_input = build_long_input(60, seed=8)
    (piece,) = plan_full(long_input.samples)
    answer = PieceResult(text="hello", language="en", segments=None)
    outcomes = [PieceOutcome(piece, answer, None, attempts=1, backend_seconds=0.1)]
    duration = long_input.duration
    (unlocated,) = merge(outcomes, duration=duration, with_words=False).segments
    assert (unlocated.start, unlocated.end) == (0.0, len(long_input.samples) / SAMPLE_RATE)
    (located,) = merge(locate_timeless(outcomes, long_input.samples), duration=duration, with_words=False).segments
    assert abs(located.start - long_input.utterances[0].speech_start) < 0.3
    assert abs(located.end - long_input.utterances[-1].speech_end) < 0.4
    timed = PieceResult(text="hello", language="en", segments=())
    kept = [PieceOutcome(piece, timed, None, attempts=1, backend_seconds=0.1)]
    assert locate_timeless(kept, long_input.samples) is kept, "a backend with times: nothing is read"


def test_pieces_texts_meet_with_a_space_only_where_the_script_has_spaces() -> None:
    """Chinese, Japanese and Thai pieces join without one; English with one; closing punctuation never after one."""
    assert joined(["今天天气", "很好。", "我们去公园吧"]) == "今天天气很好。我们去公园吧"
    assert joined(["東京に行きました", "とても楽しかった"]) == "東京に行きましたとても楽しかった"
    assert joined(["สวัสดี", "ครับ"]) == "สวัสดีครับ"
    assert joined(["hello there", "general Kenobi"]) == "hello there general Kenobi"
    assert joined(["我喜欢", "Python"]) == "我喜欢 Python"
    assert joined(["Python", "，很好"]) == "Python，很好"
    assert joined(["안녕하세요", "반갑습니다"]) == "안녕하세요 반갑습니다", "Korean is written with spaces"
    assert joined(["one"]) == "one"
    assert joined([]) == ""
    assert separator("", "x") == ""


def test_merged_text_of_chinese_pieces_has_no_space_at_the_cuts() -> None:
    samples = np.ones(85 * SAMPLE_RATE, dtype=np.int16)
    pieces = plan_chunked(samples, 30)
    texts = ["今天天气很好", "我们去公园", "散步吧", "好的。"]
    outcomes = [
        PieceOutcome(piece, PieceResult(text=f" {text} ", language="zh", segments=None), None, 1, 0.1)
        for piece, text in zip(pieces, texts, strict=True)
    ]
    assert merge(outcomes, duration=85.0, with_words=False).text == "今天天气很好我们去公园散步吧好的。"
