"""One piece being decoded by the batched Whisper engine: its state, and what its signal says.

The signal (each 10 ms frame's loudest log-mel band) is what lets the engine check
the model: skip windows of silence, find speech the model said was not there,
move coarse segment starts to the speech onset, and cut a window whose
timestamps went astray at its longest pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from faster_whisper.tokenizer import Tokenizer

FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # faster-whisper's
MIN_WORD_FRAMES = 20  # 0.2 s: no word is shorter
SILENCE_BELOW_SPEECH = 1.0  # normalised log-mel units (1.0 = 40 dB) under the piece's speech level
# The speech level is never taken lower than this (white noise at -60 dBFS; speech 40 dB under a normal
# recording's level is at -0.1 to 0.3, digital silence at -1.5): in a piece of (near) silence, silence is not
# speech relative to itself, and a window of it is not decoded over and over for speech that is not there.
LOWEST_SPEECH_LEVEL = -0.25
SHORT_WINDOW_FRAMES = 1500  # windows with less audio than 15 s are decoded without earlier text
OVERSHOOT_FRAMES = 100  # a last timestamp 1 s past the audio: the window's times are not to be trusted
MIN_PAUSE_FRAMES = 20  # 0.2 s
MIN_SPLIT_FRAMES = 200  # windows under 2 s are not split further
TIMESTAMP_SLACK_FRAMES = 50  # Whisper's segment ends can be 0.5 s early
ONSET_SEARCH_SECONDS = 1.0  # how far a segment start may move to the speech onset
REGION_GAP_FRAMES = 30  # loud stretches closer than 0.3 s are one speech region
MIN_REGION_FRAMES = 30  # speech regions shorter than 0.3 s are not checked
REGION_PAD_FRAMES = 20  # an unheard region is decoded with 0.2 s of context on each side
MAX_RECHECKS = 4  # unheard regions decoded again per piece, at most


@dataclass(frozen=True)
class DecodeOptions:
    """How one piece is decoded.

    Attributes:
        language: ISO 639-1 code to force, or None to detect on the first window.
        task: ``transcribe``, or ``translate`` (to English).
        prompt: text that conditions the piece's first window.
        temperatures: one value samples at it; several are tried in order (fallback).
        word_timestamps: align words to the audio (an extra pass).
        beam_size: beam width at temperature 0.
        joins: seconds into the piece where two stretches of the original audio meet
            (a long pause taken out between them): no segment spans one.
    """

    language: str | None = None
    task: str = "transcribe"
    prompt: str | None = None
    temperatures: tuple[float, ...] = FALLBACK_TEMPERATURES
    word_timestamps: bool = False
    beam_size: int = 5
    joins: tuple[float, ...] = ()


@dataclass(frozen=True)
class DecodedWord:
    """A word with its time in seconds from the start of its piece."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class DecodedSegment:
    """One segment of a piece, times in seconds from the start of the piece."""

    start: float
    end: float
    text: str
    tokens: list[int]
    seek: int
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[DecodedWord] | None


@dataclass(frozen=True)
class DecodedPiece:
    """What the model heard in one piece."""

    language: str
    language_probability: float
    segments: list[DecodedSegment]


@dataclass(eq=False)
class PieceJob:
    """One piece being decoded: its features and how far decoding has come."""

    options: DecodeOptions
    features: np.ndarray
    content_frames: int
    tokenizer: Tokenizer | None = None
    language_probability: float = 1.0
    seek: int = 0
    all_tokens: list[int] = field(default_factory=list)  # the prompt's tokens first, then the text's
    prompt_tokens: int = 0  # how many of all_tokens are the prompt's
    prompt_reset_since: int = 0
    last_speech_timestamp: float = 0.0
    segments: list[DecodedSegment] = field(default_factory=list)
    limit: int | None = None  # decode only up to here (set after a distrusted window, or for a recheck)
    rechecks: list[tuple[int, int]] = field(default_factory=list)  # unheard regions still to decode
    rechecked: bool = False
    alone: bool = False  # never share a window again (the model passed over this job's part of one)
    _loudness: np.ndarray | None = field(default=None, repr=False)
    _speech_level: float = field(default=0.0, repr=False)
    _onsets: np.ndarray | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        """Whether every window, and every unheard region, has been decoded."""
        return self.seek >= self.content_frames and not self.rechecks

    def advance(self) -> None:
        """After a window: end a limited stretch, skip silence, and check what was heard once at the end."""
        if self.limit is not None and self.seek >= self.limit:
            self.reach_limit()
        if self.seek < self.window_end and self.is_silent(self.seek, self.window_end):
            self.seek = self.window_end  # a whole window to decode silence is wasted work
            if self.limit is not None:
                self.reach_limit()
        if self.seek >= self.content_frames and not self.rechecked:
            self.plan_rechecks()

    def reach_limit(self) -> None:
        """After the window up to ``limit``: go on after it, or to the next unheard region."""
        self.limit = None
        if self.rechecked:
            if self.rechecks:
                self.seek, self.limit = self.rechecks.pop(0)
            else:
                self.seek = self.content_frames

    def plan_rechecks(self) -> None:
        """Once the piece is decoded with word times: queue the speech regions no word fell in.

        Whisper sometimes skips a whole utterance, most often the first of a
        window; the signal shows speech there, the words show none. Each such
        region is decoded once more on its own (no recursion).
        """
        self.rechecked = True
        words = [(w.start, w.end) for s in self.segments for w in (s.words or ())]
        if not self.options.word_timestamps:
            return
        unheard = []
        for start, end in self.speech_regions():
            if not any(w_start < end / 100 and w_end > start / 100 for w_start, w_end in words):
                unheard.append((max(0, start - REGION_PAD_FRAMES), min(self.content_frames, end + REGION_PAD_FRAMES)))
        self.rechecks = unheard[:MAX_RECHECKS]
        if self.rechecks:
            self.seek, self.limit = self.rechecks.pop(0)

    def speech_regions(self) -> list[tuple[int, int]]:
        """Stretches within 20 dB of the speech level, joined across gaps under 0.3 s, at least 0.3 s long."""
        loudness, speech_level = self._profile()
        loud = np.flatnonzero(loudness >= speech_level - SILENCE_BELOW_SPEECH / 2)
        if len(loud) == 0:
            return []
        breaks = np.flatnonzero(np.diff(loud) > REGION_GAP_FRAMES)
        starts = np.concatenate(([loud[0]], loud[breaks + 1]))
        ends = np.concatenate((loud[breaks], [loud[-1]])) + 1
        return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a >= MIN_REGION_FRAMES]

    @property
    def window_end(self) -> int:
        """Where the current window's audio ends: the limit if one is set, else the piece's end."""
        return self.limit if self.limit is not None else self.content_frames

    def _profile(self) -> tuple[np.ndarray, float]:
        """Per 10 ms frame, its loudest mel band; and the piece's speech level (their 90th percentile, or more)."""
        if self._loudness is None:
            self._loudness = self.features[:, : self.content_frames].max(axis=0)
            self._speech_level = max(float(np.percentile(self._loudness, 90)), LOWEST_SPEECH_LEVEL)
        return self._loudness, self._speech_level

    def is_silent(self, start: int, end: int) -> bool:
        """Whether frames ``[start, end)`` are too short or too quiet (40 dB under the speech level) to hold a word."""
        if end - start < MIN_WORD_FRAMES:
            return True
        loudness, speech_level = self._profile()
        return float(loudness[start:end].max()) < speech_level - SILENCE_BELOW_SPEECH

    def first_speech(self, start: int, end: int, *, after_pause: bool = False) -> int | None:
        """Where the first stretch of speech (0.2 s within 20 dB of the speech level) in ``[start, end)`` begins.

        ``after_pause``: only speech that follows 0.2 s of quiet (counted from before ``start``) is an
        utterance, not the rest of a word under way at ``start``: decoding from there, conditioned on
        the text before, makes a small model repeat that text.
        """
        loudness, speech_level = self._profile()
        threshold = speech_level - SILENCE_BELOW_SPEECH / 2
        quiet = 0  # quiet frames just before the current one
        if after_pause:
            before = loudness[max(0, start - MIN_PAUSE_FRAMES) : start] < threshold
            quiet = len(before) if before.all() else int(np.argmin(before[::-1]))
        paused, run = not after_pause or quiet >= MIN_PAUSE_FRAMES, 0
        for i, is_loud in enumerate((loudness[start:end] >= threshold).tolist()):
            if not is_loud:
                quiet, run = quiet + 1, 0
                paused = paused or quiet >= MIN_PAUSE_FRAMES
            elif paused:
                run += 1
                if run >= MIN_WORD_FRAMES:
                    return start + i + 1 - run
            else:
                quiet = 0
        return None

    def speech_onset(self, start: float, end: float, *, not_before: float) -> float:
        """A segment's start moved to where its speech begins.

        Whisper's segment starts are coarse: the first of a window is 0.00 whatever
        leads it, and others can be late by most of a second. The nearest onset in
        the signal (speech after a pause of 0.2 s or more) within a second of it,
        and inside ``[not_before, end)``, is where the speech begins (the audio's
        start counts as a pause). Failing one, a start in speech stays; a start in
        silence moves to the segment's first speech (its first loud 0.2 s).
        """
        if self._onsets is None:
            loudness, speech_level = self._profile()
            loud = loudness >= speech_level - SILENCE_BELOW_SPEECH / 2
            quiet_run = np.zeros(len(loud) + 1, dtype=np.int64)
            quiet_run[0] = MIN_PAUSE_FRAMES  # the piece starts after a pause: speech 0.1 s in is an onset too
            for i, is_loud in enumerate(loud.tolist()):
                quiet_run[i + 1] = 0 if is_loud else quiet_run[i] + 1
            self._onsets = np.array(
                [i for i in range(len(loud)) if loud[i] and quiet_run[i] >= MIN_PAUSE_FRAMES], dtype=np.int64
            )
        times = self._onsets / 100
        low = max(not_before, start - ONSET_SEARCH_SECONDS, 0.0)
        near = times[(times >= low) & (times < min(end, start + ONSET_SEARCH_SECONDS))]
        if len(near):
            return float(near[np.argmin(np.abs(near - start))])
        loudness, speech_level = self._profile()
        at = min(max(round(start * 100), 0), len(loudness) - 1)
        if loudness[at] >= speech_level - SILENCE_BELOW_SPEECH / 2:
            return start  # in speech going on from before (a segment that goes on from the last): it is right
        # a start in a long silence: where the speech in the segment begins (its first loud 0.2 s, not the
        # first onset after a pause, which can be the segment's second utterance)
        speech = self.first_speech(at, min(round(end * 100), len(loudness)))
        return speech / 100 if speech is not None else start

    def longest_pause(self, start: int, end: int) -> int | None:
        """The middle of the longest quiet stretch inside ``[start, end)``, if one is long enough to cut at."""
        loudness, speech_level = self._profile()
        quiet = loudness[start:end] < speech_level - SILENCE_BELOW_SPEECH / 2
        best_length, best_middle, run_start = 0, None, None
        for i, is_quiet in enumerate([*quiet.tolist(), False]):
            if is_quiet and run_start is None:
                run_start = i
            elif not is_quiet and run_start is not None:
                if i - run_start > best_length and run_start > 0 and i < len(quiet):
                    best_length, best_middle = i - run_start, start + (run_start + i) // 2
                run_start = None
        return best_middle if best_length >= MIN_PAUSE_FRAMES else None

    def result(self) -> DecodedPiece:
        """The decoded piece (call once ``done``)."""
        segments = sorted(self.segments, key=lambda s: s.start)
        if self.options.joins:
            segments = [part for segment in segments for part in self._split_at_joins(segment)]
        return DecodedPiece(
            language=self.tokenizer.language_code if self.tokenizer else (self.options.language or "en"),
            language_probability=self.language_probability,
            segments=segments,
        )

    def _split_at_joins(self, segment: DecodedSegment) -> list[DecodedSegment]:
        """The segment cut where the piece joins two stretches of the audio, by its words' starts.

        Whisper hears the 0.3 s left of a long pause as a short one and writes the speech on
        both sides as one segment, and the last word before it often ends well into the
        next stretch. Mapped back, either would span the pause taken out (a subtitle on
        screen through 10 s of silence), so each part ends at the join at the latest.
        """
        if not segment.words:
            return [segment]
        groups: list[list[DecodedWord]] = []
        bounds: list[float] = []  # the join after each group
        for word in segment.words:
            after = next((j for j in self.options.joins if j > word.start), float("inf"))
            if not bounds or after != bounds[-1]:
                groups.append([])
                bounds.append(after)
            groups[-1].append(word)
        if len(groups) == 1 and segment.end <= bounds[0]:
            return [segment]
        assert self.tokenizer is not None  # set by the window that decoded the segment
        parts = []
        for i, (words, bound) in enumerate(zip(groups, bounds, strict=True)):
            start = segment.start
            if i > 0:  # where its speech begins, after the join before it
                joined_at = max(j for j in self.options.joins if j <= words[0].start)
                start = self.speech_onset(words[0].start, words[-1].end, not_before=joined_at)
            start = min(start, bound)
            text = "".join(w.word for w in words)
            parts.append(
                replace(
                    segment,
                    start=start,
                    end=_within(words[-1].end, start, bound),
                    text=text,
                    tokens=self.tokenizer.encode(text),
                    words=[
                        DecodedWord(w.word, _within(w.start, start, bound), _within(w.end, start, bound), w.probability)
                        for w in words
                    ],
                )
            )
        return parts


def _within(time: float, low: float, high: float) -> float:
    return min(max(time, low), high)
