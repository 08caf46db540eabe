"""Batched Whisper decoding: faster-whisper's sequential algorithm, many pieces at once.

faster-whisper's ``WhisperModel.transcribe`` decodes one 30 s window at a time; its
``BatchedInferencePipeline`` batches windows but decodes each only once, with no
temperature fallback and no seek past an unfinished last segment, so it drops the
words after an early stop (measured on the 10-minute corpus file cut at quiet
points: WER 10.5 % against 7.4 % here, see ``docs/benchmarks.md``).

This module keeps the sequential algorithm for each piece (seek to the end of the
last complete segment, condition on the piece's own earlier text, temperature
fallback, no-speech skip) and runs it in steps: one step decodes the next window
of every job given to it, as one batch. Jobs are independent, so pieces of one
request, or of several, share the matrix products, and a scheduler can add and
remove jobs between steps (continuous batching).

It calls faster-whisper's model helpers (``get_prompt``,
``_split_segments_by_timestamps``, ``add_word_timestamps``) so that its output
matches the sequential decoder's; the version is pinned in ``pyproject.toml``.
Everything here blocks: the embedded backend runs it in one worker thread.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

# faster-whisper's defaults, kept so that batched and sequential decoding agree.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
BEST_OF = 5
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
PROMPT_RESET_ON_TEMPERATURE = 0.5
MAX_INITIAL_TIMESTAMP = 1.0
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
MIN_WORD_FRAMES = 20  # 0.2 s: no word is shorter
SILENCE_BELOW_SPEECH = 1.0  # normalised log-mel units (1.0 = 40 dB) under the piece's speech level
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
    """

    language: str | None = None
    task: str = "transcribe"
    prompt: str | None = None
    temperatures: tuple[float, ...] = FALLBACK_TEMPERATURES
    word_timestamps: bool = False
    beam_size: int = 5


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


@dataclass
class _Attempt:
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float

    @property
    def silent(self) -> bool:
        return self.no_speech_prob > NO_SPEECH_THRESHOLD and self.avg_logprob < LOG_PROB_THRESHOLD

    @property
    def needs_fallback(self) -> bool:
        if self.silent:
            return False  # a higher temperature would only invent words
        return self.compression_ratio > COMPRESSION_RATIO_THRESHOLD or self.avg_logprob < LOG_PROB_THRESHOLD


@dataclass(frozen=True)
class _Window:
    """What one step made of one job's window, before it is kept."""

    subsegments: list[dict[str, Any]]
    next_seek: int
    single_ending: bool
    attempt: _Attempt
    frames: int


@dataclass(eq=False)
class PieceJob:
    """One piece being decoded: its features and how far decoding has come."""

    options: DecodeOptions
    features: np.ndarray
    content_frames: int
    tokenizer: Tokenizer | None = None
    language_probability: float = 1.0
    seek: int = 0
    all_tokens: list[int] = field(default_factory=list)
    prompt_reset_since: int = 0
    last_speech_timestamp: float = 0.0
    segments: list[DecodedSegment] = field(default_factory=list)
    limit: int | None = None  # decode only up to here (set after a distrusted window, or for a recheck)
    rechecks: list[tuple[int, int]] = field(default_factory=list)  # unheard regions still to decode
    rechecked: bool = False
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
        """Per 10 ms frame, its loudest mel band; and the piece's speech level (their 90th percentile)."""
        if self._loudness is None:
            self._loudness = self.features[:, : self.content_frames].max(axis=0)
            self._speech_level = float(np.percentile(self._loudness, 90))
        return self._loudness, self._speech_level

    def is_silent(self, start: int, end: int) -> bool:
        """Whether frames ``[start, end)`` are too short or too quiet (40 dB under the speech level) to hold a word."""
        if end - start < MIN_WORD_FRAMES:
            return True
        loudness, speech_level = self._profile()
        return float(loudness[start:end].max()) < speech_level - SILENCE_BELOW_SPEECH

    def first_speech(self, start: int, end: int) -> int | None:
        """Where the first stretch of speech (0.2 s within 20 dB of the speech level) in ``[start, end)`` begins."""
        loudness, speech_level = self._profile()
        loud = loudness[start:end] >= speech_level - SILENCE_BELOW_SPEECH / 2
        run = 0
        for i, is_loud in enumerate(loud.tolist()):
            run = run + 1 if is_loud else 0
            if run >= MIN_WORD_FRAMES:
                return start + i + 1 - run
        return None

    def speech_onset(self, start: float, end: float, *, not_before: float) -> float:
        """A segment's start moved to where its speech begins.

        Whisper's segment starts are coarse: the first of a window is 0.00 whatever
        leads it, and others can be late by most of a second. The nearest onset in
        the signal (speech after a pause of 0.2 s or more) within a second of it,
        and inside ``[not_before, end)``, is where the speech begins; failing
        one, the first onset in the segment.
        """
        if self._onsets is None:
            loudness, speech_level = self._profile()
            loud = loudness >= speech_level - SILENCE_BELOW_SPEECH / 2
            quiet_run = np.zeros(len(loud) + 1, dtype=np.int64)
            for i, is_loud in enumerate(loud.tolist()):
                quiet_run[i + 1] = 0 if is_loud else quiet_run[i] + 1
            self._onsets = np.array(
                [i for i in range(len(loud)) if loud[i] and (i == 0 or quiet_run[i] >= MIN_PAUSE_FRAMES)],
                dtype=np.int64,
            )
        times = self._onsets / 100
        low = max(not_before, start - ONSET_SEARCH_SECONDS, 0.0)
        near = times[(times >= low) & (times < min(end, start + ONSET_SEARCH_SECONDS))]
        if len(near):
            return float(near[np.argmin(np.abs(near - start))])
        later = times[(times >= start) & (times < end)]  # a start in a long silence: the first speech in it
        return float(later[0]) if len(later) else start

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
        return DecodedPiece(
            language=self.tokenizer.language_code if self.tokenizer else (self.options.language or "en"),
            language_probability=self.language_probability,
            segments=sorted(self.segments, key=lambda s: s.start),
        )


class BatchedWhisper:
    """Steps faster-whisper's decoding loop over many pieces at once.

    Args:
        model: a loaded faster-whisper model.
    """

    def __init__(self, model: WhisperModel) -> None:
        self._model = model
        self._frames_per_window = int(model.feature_extractor.nb_max_frames)
        self._seconds_per_frame = float(model.feature_extractor.time_per_frame)

    @property
    def multilingual(self) -> bool:
        """Whether the model knows languages other than English."""
        return bool(self._model.model.is_multilingual)

    def prepare(self, audio: np.ndarray, options: DecodeOptions) -> PieceJob:
        """A job for one piece (float32 PCM, 16 kHz mono): computes its features."""
        features = self._model.feature_extractor(audio)
        job = PieceJob(options=options, features=features, content_frames=int(features.shape[-1]) - 1)
        if not self.multilingual or options.language is not None:
            job.tokenizer = self._tokenizer(options.language or "en", options.task)
        if options.prompt:
            tokenizer = job.tokenizer or self._tokenizer("en", options.task)
            job.all_tokens.extend(tokenizer.encode(" " + options.prompt.strip()))
        return job

    def decode(self, audios: list[np.ndarray], options: DecodeOptions, *, batch_size: int = 8) -> list[DecodedPiece]:
        """Decode whole pieces with the same options, ``batch_size`` windows per step."""
        jobs = [self.prepare(audio, options) for audio in audios]
        while active := [j for j in jobs if not j.done]:
            for first in range(0, len(active), batch_size):
                self.step(active[first : first + batch_size])
        return [j.result() for j in jobs]

    def step(self, jobs: list[PieceJob]) -> None:
        """Decode the next window of each job, as one batch."""
        sizes = [min(self._frames_per_window, j.window_end - j.seek) for j in jobs]
        windows = np.stack(
            [pad_or_trim(j.features[:, j.seek : j.seek + size]) for j, size in zip(jobs, sizes, strict=True)]
        )
        encoded = self._model.encode(windows)
        self._detect_languages(jobs, encoded)
        attempts = self._decode_windows(encoded, jobs)

        outcomes: dict[int, _Window] = {}
        for index, (job, size, attempt) in enumerate(zip(jobs, sizes, attempts, strict=True)):
            if attempt.no_speech_prob > NO_SPEECH_THRESHOLD and attempt.avg_logprob <= LOG_PROB_THRESHOLD:
                job.seek += size  # nothing said in this window
                job.advance()
                continue
            subsegments, next_seek, single_ending = self._model._split_segments_by_timestamps(
                tokenizer=job.tokenizer,
                tokens=attempt.tokens,
                time_offset=job.seek * self._seconds_per_frame,
                segment_size=size,
                segment_duration=size * self._seconds_per_frame,
                seek=job.seek,
            )
            subsegments = [s for s in subsegments if s["start"] != s["end"]]
            outcomes[index] = _Window(subsegments, next_seek, single_ending, attempt, size)

        self._align_words(jobs, encoded, {i: o for i, o in outcomes.items() if o.subsegments})

        for index, outcome in outcomes.items():
            job = jobs[index]
            if self._distrust(job, outcome):
                continue  # decode the window again, in two parts
            previous_seek = job.seek
            job.seek = outcome.next_seek
            if job.options.word_timestamps and not outcome.single_ending:
                # as faster-whisper: go on after the last aligned word, not the last timestamp
                last_end = _last_word_end(outcome.subsegments)
                if last_end is not None and last_end > previous_seek * self._seconds_per_frame:
                    job.seek = round(last_end / self._seconds_per_frame)
            if outcome.single_ending and outcome.subsegments:
                # The model says nothing follows its last segment; small models say so
                # too early and drop the next utterance. Speech well after the last
                # segment's end (past its imprecise last word) is decoded again.
                last_end = round(outcome.subsegments[-1]["end"] / self._seconds_per_frame)
                speech = job.first_speech(last_end + TIMESTAMP_SLACK_FRAMES, job.seek)
                if speech is not None:
                    job.seek = max(last_end, speech - TIMESTAMP_SLACK_FRAMES)
            self._keep(job, outcome, previous_seek)
            job.advance()

    def _distrust(self, job: PieceJob, outcome: _Window) -> bool:
        """Whether to drop a window's decode and cut the window at its longest pause instead.

        A window mostly of padding (a short piece, or the rest of one) sometimes
        gets a last timestamp far past its audio: the model has lost track of where
        it is, and tiny models then drop a whole utterance (measured on the corpus).
        Each part, decoded on its own, is heard.
        """
        audio_end = job.seek + outcome.frames
        if not outcome.subsegments or outcome.frames < MIN_SPLIT_FRAMES:
            return False
        last = round(outcome.subsegments[-1]["end"] / self._seconds_per_frame)
        if last <= audio_end + OVERSHOOT_FRAMES:
            return False
        pause = job.longest_pause(job.seek, audio_end)
        if pause is None:
            return False
        job.limit = pause
        return True

    def _tokenizer(self, language: str, task: str) -> Tokenizer:
        return Tokenizer(self._model.hf_tokenizer, self.multilingual, task=task, language=language)

    def _detect_languages(self, jobs: list[PieceJob], encoded: Any) -> None:
        undetected = [i for i, j in enumerate(jobs) if j.tokenizer is None]
        if not undetected:
            return
        rankings = self._model.model.detect_language(_rows(encoded, undetected, len(jobs)))
        for i, ranking in zip(undetected, rankings, strict=True):
            token, probability = ranking[0]
            jobs[i].tokenizer = self._tokenizer(token[2:-2], jobs[i].options.task)
            jobs[i].language_probability = float(probability)

    def _decode_windows(self, encoded: Any, jobs: list[PieceJob]) -> list[_Attempt]:
        """One attempt per job, falling back to higher temperatures where the first fails.

        CTranslate2 needs <|startoftranscript|> at the same position in every prompt
        of a batch: windows without earlier text are batched apart from windows
        with it, and the latter keep only as many of their latest tokens as the
        shortest context among them.
        """
        limit = self._model.max_length // 2 - 1
        contexts = [
            j.all_tokens[j.prompt_reset_since :][-limit:] if j.window_end - j.seek >= SHORT_WINDOW_FRAMES else []
            for j in jobs
        ]
        tried: list[list[_Attempt]] = [[] for _ in jobs]
        chosen: dict[int, _Attempt] = {}
        pending = list(range(len(jobs)))
        while pending:
            groups: dict[tuple[bool, float], list[int]] = defaultdict(list)
            for i in pending:
                groups[(bool(contexts[i]), jobs[i].options.temperatures[len(tried[i])])].append(i)
            for (_, temperature), group in groups.items():
                keep = min(len(contexts[i]) for i in group)
                prompts = [
                    self._model.get_prompt(
                        jobs[i].tokenizer, contexts[i][-keep:] if keep else [], without_timestamps=False
                    )
                    for i in group
                ]
                results = self._generate(_rows(encoded, group, len(jobs)), prompts, temperature, jobs[group[0]].options)
                for i, result in zip(group, results, strict=True):
                    tried[i].append(self._attempt(jobs[i], result, temperature))
            still_pending = []
            for i in pending:
                last = tried[i][-1]
                if not last.needs_fallback:
                    chosen[i] = last
                elif len(tried[i]) < len(jobs[i].options.temperatures):
                    still_pending.append(i)
                else:
                    # every temperature failed: faster-whisper keeps the likeliest non-repetitive try
                    fair = [a for a in tried[i] if a.compression_ratio <= COMPRESSION_RATIO_THRESHOLD] or tried[i]
                    best = max(fair, key=lambda a: a.avg_logprob)
                    best.temperature = last.temperature
                    chosen[i] = best
            pending = still_pending
        return [chosen[i] for i in range(len(jobs))]

    def _generate(self, encoded: Any, prompts: list[list[int]], temperature: float, options: DecodeOptions) -> Any:
        if temperature > 0:
            sampling: dict[str, Any] = {
                "beam_size": 1,
                "num_hypotheses": BEST_OF,
                "sampling_topk": 0,
                "sampling_temperature": temperature,
            }
        else:
            sampling = {"beam_size": options.beam_size, "patience": 1.0}
        tokenizer = Tokenizer(self._model.hf_tokenizer, self.multilingual, task=options.task, language="en")
        return self._model.model.generate(
            encoded,
            prompts,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_length=self._model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP / self._model.time_precision),
            **sampling,
        )

    def _attempt(self, job: PieceJob, result: Any, temperature: float) -> _Attempt:
        assert job.tokenizer is not None
        tokens = list(result.sequences_ids[0])
        cumulative = float(result.scores[0]) * len(tokens)
        return _Attempt(
            tokens=tokens,
            avg_logprob=cumulative / (len(tokens) + 1),
            compression_ratio=get_compression_ratio(job.tokenizer.decode(tokens).strip()),
            no_speech_prob=float(result.no_speech_prob),
            temperature=temperature,
        )

    def _align_words(self, jobs: list[PieceJob], encoded: Any, outcomes: dict[int, _Window]) -> None:
        by_tokenizer: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i in outcomes:
            job = jobs[i]
            if job.options.word_timestamps and job.tokenizer is not None:
                by_tokenizer[(job.tokenizer.language_code, job.options.task)].append(i)
        for group in by_tokenizer.values():
            self._model.add_word_timestamps(
                [outcomes[i].subsegments for i in group],
                jobs[group[0]].tokenizer,
                _rows(encoded, group, len(jobs)),
                [outcomes[i].frames for i in group],
                PREPEND_PUNCTUATIONS,
                APPEND_PUNCTUATIONS,
                max(jobs[i].last_speech_timestamp for i in group),
            )

    def _keep(self, job: PieceJob, outcome: _Window, previous_seek: int) -> None:
        assert job.tokenizer is not None
        attempt = outcome.attempt
        for sub in outcome.subsegments:
            text = job.tokenizer.decode(sub["tokens"])
            if not text.strip():
                continue
            job.all_tokens.extend(sub["tokens"])
            words = sub.get("words")
            previous_end = job.segments[-1].end if job.segments else 0.0
            start = job.speech_onset(float(sub["start"]), float(sub["end"]), not_before=previous_end)
            job.segments.append(
                DecodedSegment(
                    start=start,
                    end=float(sub["end"]),
                    text=text,
                    tokens=list(sub["tokens"]),
                    seek=previous_seek,
                    temperature=attempt.temperature,
                    avg_logprob=attempt.avg_logprob,
                    compression_ratio=attempt.compression_ratio,
                    no_speech_prob=attempt.no_speech_prob,
                    words=None if words is None else [_word(w, not_before=start) for w in words],
                )
            )
            if words:
                job.last_speech_timestamp = float(words[-1]["end"])
        if attempt.temperature > PROMPT_RESET_ON_TEMPERATURE:
            job.prompt_reset_since = len(job.all_tokens)


def _word(raw: dict[str, Any], *, not_before: float) -> DecodedWord:
    start = max(float(raw["start"]), not_before)
    return DecodedWord(
        word=str(raw["word"]), start=start, end=max(float(raw["end"]), start), probability=float(raw["probability"])
    )


def _rows(encoded: Any, indexes: list[int], total: int) -> Any:
    """The rows ``indexes`` of a batch of encoder outputs (the batch itself when all)."""
    if len(indexes) == total:
        return encoded
    array = np.asarray(encoded)
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array[indexes]))


def _last_word_end(subsegments: list[dict[str, Any]]) -> float | None:
    for sub in reversed(subsegments):
        words = sub.get("words")
        if words:
            return float(words[-1]["end"])
    return None
