"""Speech that starts a fifth of a second into the audio, on the real embedded engine: said once, where it is.

Whisper's first segment of a window starts at 0.00 whatever leads it, and the engine moves a segment's start
to the speech onset it finds in the signal (speech after 0.2 s of quiet). Speech 0.19 s in had less quiet
than that before it, so no onset was found near 0.00 and the start jumped to the next utterance's, 1.74 s
in; the words before it were pushed there too, the first utterance looked unheard, was decoded again, and
came out twice ("10 of clubs. 10 of clubs, 4 queen of clubs."). The audio's start now counts as a pause.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openai
import pytest

from tests.corpus import SAMPLE_RATE, clip, read_wav, write_wav

FIRST = clip("cards_001")  # "ten of clubs", from 0.19 s
SECOND = clip("cards_002")  # "four queen of clubs"


@pytest.fixture(scope="module")
def two_utterances(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.int16)
    samples = np.concatenate([read_wav(FIRST.path), gap, read_wav(SECOND.path)])
    return write_wav(tmp_path_factory.mktemp("onsets") / "two.wav", samples)


@pytest.mark.parametrize(
    "how",
    [
        {},  # full mode
        {"timestamp_granularities": ["word", "segment"]},  # full mode with word times (which look for unheard speech)
        {"chunking_strategy": "auto"},  # chunked mode: one piece here
    ],
    ids=["full", "full-words", "chunked"],
)
async def test_speech_at_the_start_is_said_once_where_it_is(
    sdk: openai.AsyncOpenAI, two_utterances: Path, how: dict[str, object]
) -> None:
    said = await sdk.audio.transcriptions.create(
        model="whisper-1",
        file=two_utterances,
        response_format="verbose_json",
        **how,  # type: ignore[arg-type]
    )
    assert said.text.lower().count("clubs") == 2, said.text
    assert said.segments is not None
    assert said.segments[0].start < 0.3, [(s.start, s.end, s.text) for s in said.segments]
    if said.words is not None:
        assert said.words[0].start < 0.3, said.words[:3]
