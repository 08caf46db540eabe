"""A long input (over 3 minutes, clips with known gaps) in chunked mode: nothing lost or doubled, honest times."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from openai.types.audio import TranscriptionVerbose

from gateway.pipeline.plan import SAMPLE_RATE, plan_chunked
from tests.alignment import align
from tests.corpus import LongInput, build_long_input, noisy, write_wav
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


@pytest.fixture(scope="module")
async def words_alone(sdk: openai.AsyncOpenAI, long_file: tuple[Path, LongInput]) -> dict[str, int]:
    """How many words the model hears in each clip sent alone (its own misses and extras, no boundary near)."""
    _, long_input = long_file
    counts = {}
    for clip in {u.clip.name: u.clip for u in long_input.utterances}.values():
        result = await sdk.audio.transcriptions.create(model="whisper-1", file=clip.path)
        counts[clip.name] = len(normalize(result.text).split())
    return counts


@dataclass(frozen=True)
class AtCut:
    """What was heard of the two utterances either side of one cut."""

    cut: float
    pair: tuple[int, int]
    heard: list[str]
    said: int  # words in their references
    alone: int  # words the model hears in the two clips sent alone

    @property
    def holds(self) -> bool:
        """No word lost or doubled beyond the model's own misses or extras on these clips."""
        return min(self.said, self.alone) <= len(self.heard) <= max(self.said, self.alone)


def at_cuts(long_input: LongInput, text: str, words_alone: dict[str, int]) -> list[AtCut]:
    """The hypothesis words of the utterance pair at each cut the planner makes in ``long_input``.

    The pair's words lie between the last hypothesis word that stands for the utterance before
    the pair and the first that stands for the one after: a word lost at the cut makes them
    fewer, a word heard in both pieces more. A substitution ("clubs" heard as "clopes") still
    counts as the word.
    """
    cuts = [piece.start / SAMPLE_RATE for piece in plan_chunked(long_input.samples, 30)[1:]]
    alignment = align(long_input, text)
    heard_in: dict[int, list[int]] = {}  # utterance: the hypothesis words that stand for its words
    for hyp_index, utterance in sorted(alignment.hyp_to_utterance.items()):
        heard_in.setdefault(utterance, []).append(hyp_index)
    utterances = long_input.utterances
    out = []
    for cut in cuts:
        before = max(i for i, u in enumerate(utterances) if u.speech_end <= cut + 0.05)
        assert utterances[before + 1].speech_start >= cut - 0.05, f"the cut at {cut:.2f} s is inside speech"
        pair = (before, before + 1)
        earlier = [h for u in range(before) for h in heard_in.get(u, [])]
        later = [h for u in range(before + 2, len(utterances)) for h in heard_in.get(u, [])]
        first = max(earlier) + 1 if earlier else 0
        last = min(later) if later else len(alignment.hypothesis)
        out.append(
            AtCut(
                cut,
                pair,
                alignment.hypothesis[first:last],
                sum(len(normalize(utterances[u].clip.reference).split()) for u in pair),
                sum(words_alone[utterances[u].clip.name] for u in pair),
            )
        )
    return out


async def test_no_word_lost_or_doubled_at_a_cut(
    chunked: TranscriptionVerbose, long_file: tuple[Path, LongInput], words_alone: dict[str, int]
) -> None:
    """At every cut the planner made, the two utterances either side hold as many words as when heard alone."""
    _, long_input = long_file
    found = at_cuts(long_input, chunked.text, words_alone)
    assert len(found) >= 6, "a 200 s file is cut at least six times"
    for at in found:
        assert at.holds, (
            f"at the cut at {at.cut:.2f} s: {len(at.heard)} words heard for utterances {at.pair} "
            f"({' '.join(at.heard)!r}), {at.said} said, {at.alone} heard alone"
        )

    # The check itself sees one word doubled or lost across a cut in this very transcript.
    words = normalize(chunked.text).split()
    at = next(a for a in found if a.said == a.alone)  # no slack: one word more or less shows
    position = next(i for i in range(len(words)) if words[i : i + len(at.heard)] == at.heard) + len(at.heard) // 2
    doubled = [*words[: position + 1], words[position], *words[position + 1 :]]
    lost = words[:position] + words[position + 1 :]
    for changed in (doubled, lost):
        again = at_cuts(long_input, " ".join(changed), words_alone)
        assert not next(a for a in again if a.cut == at.cut).holds


@pytest.fixture(scope="module")
def noisy_file(data_dir: Path) -> Path:
    """The clips in corpus order, twice, under pink noise 15 dB below the speech."""
    long_input = build_long_input(100, shuffle=False)
    return write_wav(data_dir / "noisy.wav", noisy(long_input.samples, 15.0, seed=2))


async def test_the_last_words_of_a_piece_survive_noise(sdk: openai.AsyncOpenAI, noisy_file: Path) -> None:
    """A piece here ends on "is to be ill-disposed". Under noise its last word failed the model's checks at
    every temperature, on a short last stretch, and the stretch was left out as noise: the text read
    "is to be. Had he married". Speech past the words kept is now kept, in its temperature-0 reading."""
    said = await sdk.audio.transcriptions.create(
        model="whisper-1", file=noisy_file, extra_body={"chunking_strategy": "auto"}
    )
    text = normalize(said.text)
    assert text.count("had he married") == 2, text  # both utterances after it are there: a test of something
    assert "to be had he married" not in text, text


@pytest.fixture(scope="module")
def paused_file(data_dir: Path) -> tuple[Path, LongInput]:
    """Clips apart by long silences, which chunked mode shortens to 0.3 s before the model hears them."""
    long_input = build_long_input(45, gaps=(2.0, 3.0, 5.0), seed=3)
    return write_wav(data_dir / "paused.wav", long_input.samples), long_input


async def test_no_segment_or_word_spans_a_pause_taken_out(
    sdk: openai.AsyncOpenAI, paused_file: tuple[Path, LongInput]
) -> None:
    """Whisper heard the two sides of a shortened pause as one segment, and the last word before it
    ending in the next stretch: mapped back, one subtitle stayed on through 10 s of silence."""
    path, long_input = paused_file
    said = await sdk.audio.transcriptions.create(
        model="whisper-1",
        file=path,
        response_format="verbose_json",
        timestamp_granularities=["segment", "word"],
        extra_body={"chunking_strategy": "auto"},
    )
    assert said.segments is not None
    assert said.words is not None

    def within_one_utterance(start: float, end: float) -> bool:
        return any(u.start - 0.5 <= start <= end <= u.end + 0.5 for u in long_input.utterances)

    for segment in said.segments:
        assert within_one_utterance(segment.start, segment.end), (
            f"segment {segment.start:.2f}-{segment.end:.2f} s {segment.text!r} spans a pause; utterances at "
            + ", ".join(f"{u.start:.2f}-{u.end:.2f}" for u in long_input.utterances)
        )
    for word in said.words:
        assert within_one_utterance(word.start, word.end), f"{word.word!r} at {word.start:.2f}-{word.end:.2f} s"
    assert len(said.segments) >= len(long_input.utterances)  # one at least for each, apart from the others
