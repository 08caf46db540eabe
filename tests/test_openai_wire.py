"""OpenAI's wire details that need no server: verbose_json's language, and the language codes the routes take."""

from __future__ import annotations

import json

import pytest

from compat.errors import InvalidRequest
from compat.languages import to_code
from compat.openai import ResponseFormat, parse_transcription_form, render_transcription
from compat.transcript import Segment, Transcript, Word


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


def test_verbose_words_are_bare_as_openai_gives_them() -> None:
    """OpenAI's ``words`` have no punctuation ("volleyball" where the text says "volleyball."); a dash is no word."""
    said = [" Mr.", " Smith,", " don't", " ill", "-disposed", " \u2014", ' "quoted"', " ...", " 90s?"]
    transcript = Transcript(
        text="".join(said),
        language="en",
        duration=5.0,
        segments=[Segment(id=0, start=0.0, end=5.0, text="".join(said))],
        words=[Word(word=w, start=i * 0.5, end=i * 0.5 + 0.4) for i, w in enumerate(said)],
        failed_pieces=[],
        pieces=1,
    )
    body = json.loads(render_transcription(transcript, ResponseFormat.VERBOSE_JSON, with_words=True).body)
    assert [w["word"] for w in body["words"]] == ["Mr", "Smith", "don't", "ill", "disposed", "quoted", "90s"]
    assert [w["start"] for w in body["words"]] == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
    assert body["text"] == transcript.text  # the text keeps its punctuation


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


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp_granularities[]": ["word", "segment"]},  # the SDKs
        {"timestamp_granularities": ["word,segment"]},  # comma-separated
        {"timestamp_granularities[0]": ["word"], "timestamp_granularities[1]": ["segment"]},  # PHP, qs
        {"timestamp_granularities": ['["word", "segment"]']},  # a list serialised as JSON
    ],
)
def test_every_way_clients_send_a_list(fields: dict[str, list[str]]) -> None:
    form = parse_transcription_form({"response_format": ["verbose_json"], **fields})
    assert form.timestamp_granularities == {"word", "segment"}
    assert form.unknown_fields == []


def test_a_bad_item_in_any_spelling_is_refused() -> None:
    for fields in ({"timestamp_granularities[0]": ["char"]}, {"timestamp_granularities": ['["word", "char"]']}):
        with pytest.raises(InvalidRequest, match="'char' is not a valid value") as error:
            parse_transcription_form({"response_format": ["verbose_json"], **fields})
        assert error.value.param == "timestamp_granularities[]"
    assert parse_transcription_form({"timestamp_granularities": ["[]"]}).timestamp_granularities == set()
    assert parse_transcription_form({"timestamp_granularities[x]": ["word"]}).unknown_fields == [
        "timestamp_granularities[x]"
    ]


def test_a_long_prompt_keeps_its_end_only() -> None:
    words = [f"w{i}" for i in range(2_000_000)]  # 17 MB
    kept = parse_transcription_form({"prompt": [" ".join(words)]}).prompt
    assert kept is not None
    assert len(kept) <= 4096
    assert kept.endswith(" w1999999")
    assert kept.split()[0] in words  # cut at a word's start
    assert parse_transcription_form({"prompt": ["go forward ten meters"]}).prompt == "go forward ten meters"


def test_a_huge_value_is_not_echoed_whole() -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_transcription_form({"language": ["x" * 1_000_000]})
    assert len(error.value.message) < 200
    assert "(1000000 characters)" in error.value.message
