"""The client's ``prompt`` conditions the embedded engine's first window of every piece, however short.

Whisper follows a prompt's style: written in lowercase words without punctuation, it makes
tiny.en spell "10" as "ten" and drop the capitals and the full stop. That is the effect
looked for here, on real speech, through the OpenAI route (what a client does to teach the
model a name's spelling) and in one step that batches a prompted piece with others.
"""

from __future__ import annotations

import re

import numpy as np
import openai
import pytest
from faster_whisper import WhisperModel

from gateway.backends.embedded import bundled_model_path
from gateway.backends.whisper_batch import BatchedWhisper
from gateway.backends.whisper_job import DecodeOptions
from tests.corpus import clip, read_wav

STYLE = "go forward ten meters, ten of clubs, five five"  # words for numbers, lowercase, no full stop


def in_prompt_style(text: str) -> bool:
    return not re.search(r"[0-9A-Z.]", text)


async def test_a_prompt_steers_a_short_clip(sdk: openai.AsyncOpenAI) -> None:
    speech = clip("goforward")  # 2.8 s: one window, shorter than any that gets earlier text
    plain = await sdk.audio.transcriptions.create(model="whisper-1", file=speech.path)
    prompted = await sdk.audio.transcriptions.create(model="whisper-1", file=speech.path, prompt=STYLE)
    assert not in_prompt_style(plain.text), plain.text  # the check can fail: without the prompt, "10" and capitals
    assert in_prompt_style(prompted.text), prompted.text
    assert "ten" in prompted.text.split(), prompted.text


@pytest.fixture(scope="module")
def engine() -> BatchedWhisper:
    return BatchedWhisper(WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=1))


def test_prompted_and_plain_pieces_in_one_step_each_keep_their_own(engine: BatchedWhisper) -> None:
    """A step batches windows with and without a prompt, and prompts of other lengths: none is cut or lent."""
    names = ("goforward", "cards_001", "cards_004", "ss_0930")
    prompts = (STYLE, None, "ten of clubs", None)
    jobs = []
    for name, prompt in zip(names, prompts, strict=True):
        audio = read_wav(clip(name).path).astype(np.float32) / 32768
        jobs.append(engine.prepare(audio, DecodeOptions(language="en", prompt=prompt)))
    while active := [job for job in jobs if not job.done]:
        engine.step(active)
    texts = ["".join(segment.text for segment in job.result().segments).strip() for job in jobs]
    assert [in_prompt_style(text) for text in texts] == [prompt is not None for prompt in prompts], texts
