"""The batched decoder's guard against invented text in a second look at a few seconds.

After a piece's first window, the engine looks again at short stretches: the rest
after an early stop, or speech the model passed over. When such a stretch holds only
noise (the tail of a word, a breath), every temperature can fail faster-whisper's
checks, and the likeliest try at temperature 1.0 is an invented sentence ("So, we're
going to go ahead and see what we're going to do.", seen on the corpus at random).
Which stretches defeat every temperature depends on sampling, so the model is made
to fail here: its real tries are marked as all having failed.
"""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel

from gateway.backends.embedded import bundled_model_path
from gateway.backends.whisper_batch import BatchedWhisper
from gateway.backends.whisper_job import DecodeOptions, PieceJob
from tests.corpus import SAMPLE_RATE, clip, read_wav

REST_START = 100  # frames (1 s): a second look at the rest of the clip


@pytest.fixture(scope="module")
def engine() -> BatchedWhisper:
    return BatchedWhisper(WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=1))


def rest_of(engine: BatchedWhisper, name: str) -> PieceJob:
    """A job at its second look: the clip after its first second."""
    samples = read_wav(clip(name).path).astype(np.float32) / 32768
    audio = np.concatenate([samples, np.zeros(SAMPLE_RATE // 2, dtype=np.float32)])
    job = engine.prepare(audio, DecodeOptions(language="en"))
    job.seek = REST_START
    job.rechecked = True  # no rechecks: only the step under test
    return job


def every_temperature_fails(engine: BatchedWhisper, monkeypatch: pytest.MonkeyPatch) -> None:
    decode = engine._decode_windows

    def failing(encoded: object, slots: list[object]) -> list[object]:
        attempts = decode(encoded, slots)  # type: ignore[arg-type]
        for attempt in attempts:
            attempt.exhausted = True
        return attempts  # type: ignore[return-value]

    monkeypatch.setattr(engine, "_decode_windows", failing)


def test_the_rest_is_heard_when_a_temperature_passes(engine: BatchedWhisper) -> None:
    job = rest_of(engine, "goforward")
    engine.step([job])
    assert job.segments, "the control: the real decode of the rest keeps words"


def test_a_lone_second_look_that_fails_every_temperature_is_left_out(
    engine: BatchedWhisper, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = rest_of(engine, "goforward")
    every_temperature_fails(engine, monkeypatch)
    engine.step([job])
    assert job.segments == []
    assert job.done, "the stretch is passed, not tried again"


def test_a_shared_window_that_fails_every_temperature_is_heard_again_part_by_part(
    engine: BatchedWhisper, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [rest_of(engine, "goforward"), rest_of(engine, "ss_0930")]
    assert engine.windows(jobs) == 1, "the two rests share a window"
    every_temperature_fails(engine, monkeypatch)
    engine.step(jobs)
    assert [job.segments for job in jobs] == [[], []]
    assert [(job.alone, job.seek) for job in jobs] == [(True, REST_START), (True, REST_START)]
    monkeypatch.undo()
    engine.step(jobs)
    assert engine.windows(jobs) == 2 or all(job.done for job in jobs)
    assert all(job.segments for job in jobs), "each part, heard alone, keeps its words"
