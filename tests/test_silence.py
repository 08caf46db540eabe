"""Silence in full mode, on the real embedded engine: nothing invented in it, nothing said twice after it.

A window of digital silence makes Whisper say " You"; the engine's checks, which compare the model's
text with the signal, took silence for speech relative to itself and decoded it again and again ("You"
fifteen times for 30 s), and took the tail of a last word for a new utterance, which the model,
conditioned on the text before, said again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openai

from tests.corpus import SAMPLE_RATE, clip, read_wav, write_wav


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


async def verbose(sdk: openai.AsyncOpenAI, path: Path) -> openai.types.audio.TranscriptionVerbose:
    return await sdk.audio.transcriptions.create(model="whisper-1", file=path, response_format="verbose_json")


async def test_silence_alone_is_no_text(sdk: openai.AsyncOpenAI, tmp_path: Path) -> None:
    for seconds in (3, 30, 60):
        path = write_wav(tmp_path / f"silence{seconds}.wav", silence(seconds))
        said = await verbose(sdk, path)
        assert (said.text, said.segments) == ("", []), (seconds, said.text)


async def test_speech_then_silence_is_said_once(sdk: openai.AsyncOpenAI, tmp_path: Path) -> None:
    speech = read_wav(clip("goforward").path)  # 2.8 s, then 27 s of silence: one window
    said = await verbose(sdk, write_wav(tmp_path / "then-silence.wav", np.concatenate([speech, silence(27)])))
    assert said.text.lower().count("forward") == 1, said.text
    assert said.segments is not None
    assert len(said.segments) == 1
    assert said.segments[0].end < 3.5


async def test_a_segment_going_on_from_the_last_keeps_its_start(sdk: openai.AsyncOpenAI, tmp_path: Path) -> None:
    """Whisper stretches a window's last segment over the silence after it; its start is where it goes on from
    the segment before (5.6 s), not the next utterance's onset 20 s later."""
    first, second = read_wav(clip("ss_0870").path), read_wav(clip("ss_0890").path)
    path = write_wav(tmp_path / "gap.wav", np.concatenate([first, silence(20), second]))
    said = await verbose(sdk, path)
    assert said.segments is not None
    (going_on,) = [s for s in said.segments if "power" in s.text]
    assert going_on.start < len(first) / SAMPLE_RATE, [(s.start, s.end, s.text) for s in said.segments]
