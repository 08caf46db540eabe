"""A long input (over 3 minutes, clips with known gaps) in chunked mode: nothing lost or doubled, honest times."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai.types.audio import TranscriptionVerbose

from tests.alignment import align
from tests.corpus import LongInput, build_long_input, write_wav
from tests.wer import normalize, wer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_file(data_dir: Path) -> tuple[Path, LongInput]:
    long_input = build_long_input(200, gaps=(0.6, 0.9, 1.3), seed=11)
    assert long_input.duration > 180
    return write_wav(data_dir / "long.wav", long_input.samples), long_input


@pytest.fixture(scope="module")
async def chunked(sdk: openai.AsyncOpenAI, long_file: tuple[Path, LongInput]) -> TranscriptionVerbose:
    path, _ = long_file
    return await sdk.audio.transcriptions.create(
        model="whisper-1",
        file=path,
        response_format="verbose_json",
        timestamp_granularities=["segment"],
        extra_body={"chunking_strategy": "auto"},
    )


async def test_every_utterance_once_in_order(chunked: TranscriptionVerbose, long_file: tuple[Path, LongInput]) -> None:
    _, long_input = long_file
    assert wer(long_input.reference, chunked.text) <= 0.10
    alignment = align(long_input, chunked.text)
    for index, utterance in enumerate(long_input.utterances):
        heard = alignment.heard_fraction(index)
        assert heard >= 0.5, f"utterance {index} at {utterance.start:.1f} s ({utterance.clip.reference!r}) lost"
    # A doubled word at a boundary would be an inserted word; a lost one a deleted word.
    assert alignment.insertions <= 0.02 * len(alignment.reference)
    # The matched reference positions only increase: the order is kept.
    positions = [alignment.hyp_to_ref[i] for i in sorted(alignment.hyp_to_ref)]
    assert positions == sorted(positions)


async def test_segment_starts_are_true_starts(chunked: TranscriptionVerbose, long_file: tuple[Path, LongInput]) -> None:
    """Segments that begin an utterance start within 0.5 s of where it really starts."""
    _, long_input = long_file
    assert chunked.segments is not None
    assert chunked.duration == pytest.approx(long_input.duration, abs=0.01)
    words: list[tuple[int, str]] = []  # (segment index, word)
    for index, segment in enumerate(chunked.segments):
        words.extend((index, w) for w in normalize(segment.text).split())
    alignment = align(long_input, " ".join(w for _, w in words))
    checked = 0
    first_word_of_segment = {}
    for hyp_index, (segment_index, _) in enumerate(words):
        first_word_of_segment.setdefault(segment_index, hyp_index)
    for segment_index, hyp_index in first_word_of_segment.items():
        ref_index = alignment.hyp_to_ref.get(hyp_index)
        if ref_index is None or alignment.reference[ref_index].position != 0:
            continue  # the segment does not begin an utterance: its true start is not known
        utterance = long_input.utterances[alignment.reference[ref_index].utterance]
        start = chunked.segments[segment_index].start
        assert abs(start - utterance.speech_start) <= 0.5, (
            f"segment {segment_index} ({chunked.segments[segment_index].text!r}) starts at {start:.2f} s; "
            f"the utterance's speech starts at {utterance.speech_start:.2f} s"
        )
        checked += 1
    assert checked >= len(long_input.utterances) // 3, f"only {checked} segments could be checked"
    previous = 0.0
    for segment in chunked.segments:
        assert previous <= segment.start <= segment.end <= chunked.duration
        previous = segment.end
