"""Batched Whisper decoding: faster-whisper's sequential algorithm, many pieces at once.

faster-whisper's ``WhisperModel.transcribe`` decodes one 30 s window at a time; its
``BatchedInferencePipeline`` batches windows but decodes each only once, with no
temperature fallback and no seek past an unfinished last segment, so it drops the
words after an early stop (measured on the 10-minute corpus file cut at the same
points: WER 10.5 %, against 6.7 % here; see ``docs/benchmarks.md``).

This module keeps the sequential algorithm for each piece (seek to the end of the
last complete segment, condition on the piece's own earlier text, temperature
fallback, no-speech skip) and runs it in steps: one step decodes the next window
of every job given to it, as one batch. Jobs are independent, so pieces of one
request, or of several, share the matrix products, and a scheduler can add and
remove jobs between steps (continuous batching). The short rests that early stops
leave share windows (``_arrange``), and the signal checks the model (see
``whisper_job``): silence is never decoded, speech the model passed over is. Such a
second look at a few seconds, when every temperature fails the checks, is left out:
what defeats every temperature there is noise, which tiny models turn into invented
sentences at temperature 1.0.

It calls faster-whisper's model helpers (``get_prompt``,
``_split_segments_by_timestamps``, ``add_word_timestamps``) so that its output
matches the sequential decoder's; the version is pinned in ``pyproject.toml``.
Everything here blocks: the embedded backend runs it in worker threads. An instance
keeps no state between steps, so steps on different jobs may run at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

from gateway.backends.whisper_job import (
    MIN_SPLIT_FRAMES,
    OVERSHOOT_FRAMES,
    SHORT_WINDOW_FRAMES,
    TIMESTAMP_SLACK_FRAMES,
    DecodedPiece,
    DecodedSegment,
    DecodedWord,
    DecodeOptions,
    PieceJob,
)

# faster-whisper's defaults, kept so that batched and sequential decoding agree.
BEST_OF = 5
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
PROMPT_RESET_ON_TEMPERATURE = 0.5
MAX_INITIAL_TIMESTAMP = 1.0
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
PACK_MAX_FRAMES = 1200  # the rest of a piece up to 12 s shares a window with others
PACK_GAP_FRAMES = 100  # 1 s of silence between the parts of a shared window
PACK_MAX_PARTS = 4  # more unrelated fragments in one window confuse a small model (measured: 5 adds errors)
LEFT_OUT_SLACK_FRAMES = 25  # past the kept words' end: the tail of their last word, not a word of its own
MAX_WORDS_PER_SECOND = 4  # faster than anyone speaks: a reading with more words for its stretch is invented


@dataclass
class _Attempt:
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float
    exhausted: bool = False  # every temperature failed the checks: the likeliest try, for want of a better one
    greedy: _Attempt | None = None  # when exhausted: the try at temperature 0 (marked exhausted too), if one was

    @property
    def silent(self) -> bool:
        return self.no_speech_prob > NO_SPEECH_THRESHOLD and self.avg_logprob < LOG_PROB_THRESHOLD

    @property
    def needs_fallback(self) -> bool:
        if self.silent:
            return False  # a higher temperature would only invent words
        return self.compression_ratio > COMPRESSION_RATIO_THRESHOLD or self.avg_logprob < LOG_PROB_THRESHOLD


@dataclass(frozen=True)
class _Part:
    """A stretch of one job's audio placed in a window."""

    job: PieceJob
    start: int  # frames, in the job
    end: int
    offset: int  # frames, in the window

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class _Slot:
    """One 30 s window of a batch: one job's next stretch, or the short rests of several."""

    parts: list[_Part]

    @property
    def lead(self) -> PieceJob:
        return self.parts[0].job

    @property
    def packed(self) -> bool:
        return len(self.parts) > 1

    @property
    def frames(self) -> int:
        """Frames of the window that hold audio (the rest is padding)."""
        return self.parts[-1].offset + self.parts[-1].length

    @property
    def second_look(self) -> bool:
        """A short stretch decoded after its piece's first window: a rest, or speech the model passed over."""
        return self.packed or (self.parts[0].start > 0 and self.frames < SHORT_WINDOW_FRAMES)


@dataclass(frozen=True)
class _Window:
    """What one step made of one slot, before it is kept."""

    subsegments: list[dict[str, Any]]
    next_seek: int
    single_ending: bool
    attempt: _Attempt
    frames: int


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

    @property
    def languages(self) -> frozenset[str]:
        """The language codes the model can be told to use: English alone for an English-only model."""
        if not self.multilingual:
            return frozenset({"en"})
        return languages_of(self._model.hf_tokenizer)

    def prepare(self, audio: np.ndarray, options: DecodeOptions) -> PieceJob:
        """A job for one piece (float32 PCM, 16 kHz mono): computes its features."""
        features = self._model.feature_extractor(audio)
        job = PieceJob(options=options, features=features, content_frames=int(features.shape[-1]) - 1)
        if not self.multilingual or options.language is not None:
            job.tokenizer = self._tokenizer(options.language or "en", options.task)
        if options.prompt:
            tokenizer = job.tokenizer or self._tokenizer("en", options.task)
            job.all_tokens.extend(tokenizer.encode(" " + options.prompt.strip()))
            job.prompt_tokens = len(job.all_tokens)
        if job.is_silent(0, job.content_frames):  # no sound at all: Whisper would only invent a " You"
            job.seek, job.rechecked = job.content_frames, True
        return job

    def decode(self, audios: list[np.ndarray], options: DecodeOptions, *, batch_size: int = 8) -> list[DecodedPiece]:
        """Decode whole pieces with the same options, ``batch_size`` jobs per step."""
        jobs = [self.prepare(audio, options) for audio in audios]
        while active := [j for j in jobs if not j.done]:
            for first in range(0, len(active), batch_size):
                self.step(active[first : first + batch_size])
        return [j.result() for j in jobs]

    def step(self, jobs: list[PieceJob]) -> None:
        """Decode the next stretch of each job, as one batch of windows."""
        slots = self._arrange(jobs)
        windows = np.zeros((len(slots), self._model.model.n_mels, self._frames_per_window), dtype=np.float32)
        for row, slot in enumerate(slots):
            for part in slot.parts:
                windows[row, :, part.offset : part.offset + part.length] = part.job.features[:, part.start : part.end]
        encoded = self._model.encode(windows)
        self._detect_languages(slots, encoded)
        attempts = self._decode_windows(encoded, slots)

        outcomes: dict[int, _Window] = {}
        for index, (slot, attempt) in enumerate(zip(slots, attempts, strict=True)):
            if attempt.no_speech_prob > NO_SPEECH_THRESHOLD and attempt.avg_logprob <= LOG_PROB_THRESHOLD:
                for part in slot.parts:  # nothing said in this window
                    part.job.seek = part.end
                    part.job.advance()
                continue
            if attempt.exhausted and slot.second_look:
                if attempt.greedy is not None and self._speech_left_out(slot, attempt.greedy):
                    attempt = attempt.greedy  # speech no word covers yet: its plainest reading, not a sample
                else:
                    # A second look at a few seconds where no temperature passed the checks holds
                    # noise (the tail of a word, a breath) that tiny models turn into invented
                    # sentences at high temperature. A shared window is heard again part by part;
                    # a lone stretch is left out.
                    for part in slot.parts:
                        if slot.packed:
                            part.job.alone = True
                        else:
                            part.job.seek = part.end
                        part.job.advance()
                    continue
            lead = slot.parts[0]
            base = 0 if slot.packed else lead.start  # a shared window keeps its own time
            subsegments, next_seek, single_ending = self._model._split_segments_by_timestamps(
                tokenizer=slot.lead.tokenizer,
                tokens=attempt.tokens,
                time_offset=base * self._seconds_per_frame,
                segment_size=slot.frames,
                segment_duration=slot.frames * self._seconds_per_frame,
                seek=base,
            )
            subsegments = [s for s in subsegments if s["start"] != s["end"]]
            outcomes[index] = _Window(subsegments, next_seek, single_ending, attempt, slot.frames)

        self._align_words(slots, encoded, {i: o for i, o in outcomes.items() if o.subsegments})

        for index, outcome in outcomes.items():
            slot = slots[index]
            if slot.packed:
                self._share_out(slot, outcome)
            else:
                self._advance_single(slot.lead, outcome)

    def windows(self, jobs: list[PieceJob]) -> int:
        """How many windows a step over ``jobs`` would decode (short rests share windows)."""
        return len(self._arrange(jobs))

    def _arrange(self, jobs: list[PieceJob]) -> list[_Slot]:
        """One window per job, except that short rests of pieces share windows.

        Whisper often stops a window before its end; the rest (a few seconds) would
        otherwise cost a whole 30 s window to encode and decode. Rests are packed
        first-fit, 1 s of silence apart, and the words shared out by their times.
        """
        slots: list[_Slot] = []
        rests: dict[tuple[str, str, tuple[float, ...]], list[PieceJob]] = defaultdict(list)
        for job in jobs:
            end = min(job.seek + self._frames_per_window, job.window_end)
            if job.seek > 0 and not job.alone and job.tokenizer is not None and end - job.seek <= PACK_MAX_FRAMES:
                rests[(job.tokenizer.language_code, job.options.task, job.options.temperatures)].append(job)
            else:
                slots.append(_Slot([_Part(job, job.seek, end, 0)]))
        for group in rests.values():
            bins: list[list[_Part]] = []
            for job in sorted(group, key=lambda j: j.window_end - j.seek, reverse=True):
                length = job.window_end - job.seek
                for parts in bins:
                    offset = parts[-1].offset + parts[-1].length + PACK_GAP_FRAMES
                    if len(parts) < PACK_MAX_PARTS and offset + length <= self._frames_per_window:
                        parts.append(_Part(job, job.seek, job.window_end, offset))
                        break
                else:
                    bins.append([_Part(job, job.seek, job.window_end, 0)])
            slots.extend(_Slot(parts) for parts in bins)
        return slots

    def _advance_single(self, job: PieceJob, outcome: _Window) -> None:
        """faster-whisper's seek rules for a job's own window, with the engine's checks."""
        if self._distrust(job, outcome):
            return  # decode the window again, in two parts
        previous_seek = job.seek
        job.seek = outcome.next_seek
        if job.options.word_timestamps and not outcome.single_ending:
            # as faster-whisper: go on after the last aligned word, not the last timestamp
            last_end = _last_word_end(outcome.subsegments)
            if last_end is not None and last_end > previous_seek * self._seconds_per_frame:
                job.seek = round(last_end / self._seconds_per_frame)
        if outcome.single_ending and outcome.subsegments:
            # The model says nothing follows its last segment; small models say so
            # too early and drop the next utterance. An utterance well after the last
            # segment's end (past its imprecise last word) is decoded again.
            last_end = round(outcome.subsegments[-1]["end"] / self._seconds_per_frame)
            speech = job.first_speech(last_end + TIMESTAMP_SLACK_FRAMES, job.seek, after_pause=True)
            if speech is not None:
                job.seek = max(last_end, speech - TIMESTAMP_SLACK_FRAMES)
        self._keep(job, outcome, previous_seek)
        job.advance()

    def _share_out(self, slot: _Slot, outcome: _Window) -> None:
        """Give each job of a shared window its words (by time), as segments, and move its seek."""
        by_part: dict[int, list[tuple[int, list[DecodedWord]]]] = defaultdict(list)
        for number, sub in enumerate(outcome.subsegments):
            for raw in sub.get("words") or ():
                middle = (float(raw["start"]) + float(raw["end"])) / 2 / self._seconds_per_frame
                index = min(
                    range(len(slot.parts)),
                    key=lambda i: _distance(middle, slot.parts[i].offset, slot.parts[i].offset + slot.parts[i].length),
                )
                part = slot.parts[index]
                shift = (part.start - part.offset) * self._seconds_per_frame
                word = _word(raw, not_before=0.0, shift=shift)
                runs = by_part[index]
                if runs and runs[-1][0] == number:
                    runs[-1][1].append(word)
                else:
                    runs.append((number, [word]))
        reached = outcome.frames
        if not outcome.single_ending:
            last_end = _last_word_end(outcome.subsegments)
            reached = round(last_end / self._seconds_per_frame) if last_end else outcome.next_seek
        moved = False
        for index, part in enumerate(slot.parts):
            job = part.job
            if index not in by_part and job.first_speech(part.start, part.end) is not None:
                job.alone = True  # the model passed over this part's speech: decode it in a window of its own
                continue
            for _, words in by_part.get(index, ()):
                self._keep_words(job, words, outcome.attempt)
            if reached >= part.offset + part.length:
                job.seek = part.end
                moved = True
            elif reached > part.offset:
                job.seek = part.start + (reached - part.offset)
                moved = True
        if not moved:  # the model gave nothing usable: do not decode the same again
            for part in slot.parts:
                if not part.job.alone:
                    part.job.seek = part.end
        for part in slot.parts:
            part.job.advance()

    def _keep_words(self, job: PieceJob, words: list[DecodedWord], attempt: _Attempt) -> None:
        assert job.tokenizer is not None
        text = "".join(w.word for w in words)
        if not text.strip():
            return
        previous_end = max((s.end for s in job.segments), default=0.0)
        start = job.speech_onset(words[0].start, words[-1].end, not_before=min(previous_end, words[0].start))
        job.segments.append(
            DecodedSegment(
                start=start,
                end=words[-1].end,
                text=text,
                tokens=job.tokenizer.encode(text),
                seek=round(words[0].start / self._seconds_per_frame),
                temperature=attempt.temperature,
                avg_logprob=attempt.avg_logprob,
                compression_ratio=attempt.compression_ratio,
                no_speech_prob=attempt.no_speech_prob,
                words=[DecodedWord(w.word, max(w.start, start), max(w.end, start), w.probability) for w in words]
                if job.options.word_timestamps
                else None,
            )
        )

    def _speech_left_out(self, slot: _Slot, greedy: _Attempt) -> bool:
        """Whether a lone stretch that defeated every temperature still holds an utterance no kept word covers.

        Speech that starts past the kept words' end (and past the slack of that end, where the
        tail of their last word is) is a word the model has not given yet: on noisy audio the
        last word of a piece ("ill-disposed") fails the checks at every temperature, and leaving
        the stretch out lost it. Its temperature-0 reading is kept; noise alone (a breath, a word's
        tail) still is left out.
        """
        if slot.packed or not greedy.tokens or greedy.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
            return False  # a repetition loop is no reading of anything
        part = slot.parts[0]
        job = part.job
        assert job.tokenizer is not None
        words = len(job.tokenizer.decode(greedy.tokens).split())
        if words > max(1, round(part.length * self._seconds_per_frame * MAX_WORDS_PER_SECOND)):
            return False  # more words than the stretch can hold: a sentence made up, not heard
        heard_until = max((segment.end for segment in job.segments), default=0.0)
        start = max(part.start, round(heard_until / self._seconds_per_frame) + LEFT_OUT_SLACK_FRAMES)
        return start < part.end and job.first_speech(start, part.end) is not None

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

    def _detect_languages(self, slots: list[_Slot], encoded: Any) -> None:
        undetected = [i for i, slot in enumerate(slots) if slot.lead.tokenizer is None]
        if not undetected:
            return
        rankings = self._model.model.detect_language(_rows(encoded, undetected, len(slots)))
        for i, ranking in zip(undetected, rankings, strict=True):
            token, probability = ranking[0]
            job = slots[i].lead
            job.tokenizer = self._tokenizer(token[2:-2], job.options.task)
            job.language_probability = float(probability)

    def _decode_windows(self, encoded: Any, slots: list[_Slot]) -> list[_Attempt]:
        """One attempt per window, falling back to higher temperatures where the first fails.

        CTranslate2 needs <|startoftranscript|> at the same position in every prompt
        of a batch: windows without earlier text are batched apart from windows
        with it, and the latter keep only as many of their latest tokens as the
        shortest context among them. A piece's first window is conditioned on the
        client's prompt alone, whole, however short the window (as faster-whisper
        and OpenAI do), and batched only with first windows of a prompt as long.
        Later short windows, and shared ones, get no earlier text: conditioned on
        it, a window of a few seconds tends to continue the text instead of hearing
        the audio.
        """
        limit = self._model.max_length // 2 - 1
        contexts = []
        prompted = []  # a first window, conditioned on the client's prompt
        for slot in slots:
            job = slot.lead
            first = bool(job.prompt_tokens) and not job.segments and not slot.packed
            short = slot.packed or job.window_end - job.seek < SHORT_WINDOW_FRAMES
            if first:
                contexts.append(job.all_tokens[: job.prompt_tokens][-limit:])
            else:
                contexts.append([] if short else job.all_tokens[job.prompt_reset_since :][-limit:])
            prompted.append(first)
        tried: list[list[_Attempt]] = [[] for _ in slots]
        chosen: dict[int, _Attempt] = {}
        pending = list(range(len(slots)))
        while pending:
            groups: dict[tuple[int, float], list[int]] = defaultdict(list)
            for i in pending:
                # prompts batch with prompts as long (none is cut); earlier texts with earlier texts
                kind = len(contexts[i]) if prompted[i] else -int(bool(contexts[i]))
                groups[(kind, slots[i].lead.options.temperatures[len(tried[i])])].append(i)
            for (_, temperature), group in groups.items():
                keep = min(len(contexts[i]) for i in group)
                prompts = [
                    self._model.get_prompt(
                        slots[i].lead.tokenizer, contexts[i][-keep:] if keep else [], without_timestamps=False
                    )
                    for i in group
                ]
                results = self._generate(
                    _rows(encoded, group, len(slots)), prompts, temperature, slots[group[0]].lead.options
                )
                for i, result in zip(group, results, strict=True):
                    tried[i].append(self._attempt(slots[i].lead, result, temperature))
            still_pending = []
            for i in pending:
                last = tried[i][-1]
                if not last.needs_fallback:
                    chosen[i] = last
                elif len(tried[i]) < len(slots[i].lead.options.temperatures):
                    still_pending.append(i)
                else:
                    # every temperature failed: faster-whisper keeps the likeliest non-repetitive try
                    fair = [a for a in tried[i] if a.compression_ratio <= COMPRESSION_RATIO_THRESHOLD] or tried[i]
                    best = max(fair, key=lambda a: a.avg_logprob)
                    opening = tried[i][0]  # a temperature-0 try only where the client left the temperature alone
                    greedy = replace(opening, exhausted=True) if opening.temperature == 0 else None
                    chosen[i] = replace(best, temperature=last.temperature, exhausted=True, greedy=greedy)
            pending = still_pending
        return [chosen[i] for i in range(len(slots))]

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

    def _align_words(self, slots: list[_Slot], encoded: Any, outcomes: dict[int, _Window]) -> None:
        """Word times for the windows that want them (shared windows always: their words are shared out by time)."""
        by_tokenizer: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i in outcomes:
            job = slots[i].lead
            if (job.options.word_timestamps or slots[i].packed) and job.tokenizer is not None:
                by_tokenizer[(job.tokenizer.language_code, job.options.task)].append(i)
        for group in by_tokenizer.values():
            self._model.add_word_timestamps(
                [outcomes[i].subsegments for i in group],
                slots[group[0]].lead.tokenizer,
                _rows(encoded, group, len(slots)),
                [outcomes[i].frames for i in group],
                PREPEND_PUNCTUATIONS,
                APPEND_PUNCTUATIONS,
                0.0,
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
        if attempt.temperature > PROMPT_RESET_ON_TEMPERATURE or attempt.exhausted:  # no text that failed conditions
            job.prompt_reset_since = len(job.all_tokens)


def _word(raw: dict[str, Any], *, not_before: float, shift: float = 0.0) -> DecodedWord:
    start = max(float(raw["start"]) + shift, not_before)
    return DecodedWord(
        word=str(raw["word"]),
        start=start,
        end=max(float(raw["end"]) + shift, start),
        probability=float(raw["probability"]),
    )


def _distance(point: float, low: int, high: int) -> float:
    return 0.0 if low <= point < high else min(abs(point - low), abs(point - high))


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


def languages_of(tokenizer: Any) -> frozenset[str]:
    """Whisper's language codes that have a token in this vocabulary (``yue`` only from large-v3 on).

    faster-whisper's Tokenizer refuses a code without one (a ValueError in a decoding step,
    which would fail every piece batched with it), so only these may reach it.
    """
    return frozenset(code for code in _LANGUAGE_CODES if tokenizer.token_to_id(f"<|{code}|>") is not None)
