"""OpenAI's wire details that need no server: verbose_json's language, and the language codes the routes take."""

from __future__ import annotations

import json

from compat.languages import to_code
from compat.openai import ResponseFormat, render_transcription
from compat.transcript import Segment, Transcript


def test_verbose_json_language_is_the_detected_one_and_english_for_a_translation() -> None:
    """OpenAI's TranslationVerbose: ``language`` is the output's, always english; a transcription's is the heard one."""
    transcript = Transcript(
        text="bonjour",
        language="fr",
        duration=1.0,
        segments=[Segment(id=0, start=0.0, end=1.0, text="bonjour")],
        words=None,
        failed_pieces=[],
        pieces=1,
    )
    for task, language in (("transcribe", "french"), ("translate", "english")):
        rendered = render_transcription(transcript, ResponseFormat.VERBOSE_JSON, with_words=False, task=task)
        assert json.loads(rendered.body)["language"] == language


def test_language_codes_and_names() -> None:
    """ISO 639-1 codes (with a region or not), English names any case; Whisper's own spellings of two codes."""
    assert [to_code(v) for v in ("en", "en-US", "EN_gb", "English", "mandarin", "yue")] == [
        "en",
        "en",
        "en",
        "en",
        "zh",
        "yue",
    ]
    assert [to_code(v) for v in ("jv", "jw", "nb", "nb-NO", "no")] == ["jw", "jw", "no", "no", "no"]
    assert to_code("klingon") is None
    assert to_code("xx") is None
