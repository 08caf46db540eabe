"""Qwen3-ASR's answer format and the chat request built for one piece (pure functions, no server)."""

from __future__ import annotations

import base64
import io
import json
import wave

import numpy as np
import pytest

from gateway.backends.base import PieceRequest
from gateway.backends.vllm.answer import Answer, forced_prefix, parse_answer, qwen_language_name
from gateway.backends.vllm.request import audio_at, chat_body, chat_messages, extra_body, inline_audio, wav_bytes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("language English<asr_text>hello world", Answer("hello world", "en")),
        ("language French<asr_text>bonjour", Answer("bonjour", "fr")),
        ("language Chinese<asr_text>你好世界", Answer("你好世界", "zh")),
        ("language Cantonese<asr_text>早晨", Answer("早晨", "yue")),
        ("language Haitian Creole<asr_text>bonjou", Answer("bonjou", "ht")),
        # no speech
        ("language None<asr_text>", Answer("", None)),
        ("language None<asr_text>   ", Answer("", None)),
        ("", Answer("", None)),
        ("   \n", Answer("", None)),
        (None, Answer("", None)),
        # whitespace and case
        ("  language   english  <asr_text>  hello \n  world  ", Answer("hello world", "en")),
        ("LANGUAGE German<asr_text>hallo", Answer("hallo", "de")),
        ("language English<asr_text>hello\n\nworld\t!", Answer("hello world !", "en")),
        # missing tag: cut short before the text, or plain text
        ("language English", Answer("", "en")),
        ("language", Answer("", None)),
        ("language None", Answer("", None)),
        ("language is what we speak", Answer("language is what we speak", None)),
        ("hello world", Answer("hello world", None)),
        # junk
        ("<asr_text>hello", Answer("hello", None)),
        ("garbage<asr_text>hello", Answer("hello", None)),
        ("language Klingon<asr_text>nuqneH", Answer("nuqneH", None)),
        ("language English<asr_text>hello<asr_text>world", Answer("hello world", "en")),
        ("language Chinese<asr_text>你好language English<asr_text>hello", Answer("你好 hello", "zh")),
    ],
)
def test_parse_answer(raw: str | None, expected: Answer) -> None:
    assert parse_answer(raw) == expected


@pytest.mark.parametrize(
    ("code", "name"),
    [("en", "English"), ("fr", "French"), ("zh", "Chinese"), ("yue", "Cantonese"), ("ht", "Haitian Creole")],
)
def test_language_names_as_qwen_writes_them(code: str, name: str) -> None:
    assert qwen_language_name(code) == name
    assert forced_prefix(code) == f"language {name}<asr_text>"
    assert parse_answer(forced_prefix(code) + " text").language == code


def test_wav_is_16k_mono_16bit_and_exact() -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1000], dtype=np.int16)
    with wave.open(io.BytesIO(wav_bytes(pcm)), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        assert np.array_equal(np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), pcm)


def test_wav_is_what_the_wave_module_writes() -> None:
    """The header is built by hand (no wave module per piece): byte for byte Python's own, odd lengths too."""
    for frames in (0, 1, 160_001):
        pcm = np.arange(frames, dtype=np.int64).astype(np.int16)
        reference = io.BytesIO()
        with wave.open(reference, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(16_000)
            wav.writeframes(pcm.tobytes())
        assert wav_bytes(pcm) == reference.getvalue()
        assert wav_bytes(pcm[::2]) == wav_bytes(pcm[::2].copy())  # a strided view is written as its samples


def test_piece_floats_are_the_samples_scaled_to_one() -> None:
    piece = PieceRequest(samples=np.array([0, 16384, 32767, -32768], dtype=np.int16))
    floats = piece.float32()
    assert floats.dtype == np.float32
    assert floats.tolist() == [0.0, 0.5, 32767 / 32768, -1.0]


def test_inline_audio_goes_out_as_base64_in_the_body() -> None:
    piece = PieceRequest(samples=np.zeros(160, dtype=np.int16), temperature=0.2)
    wav = wav_bytes(np.linspace(-32768, 32767, 1600).astype(np.int16))
    body = json.loads(chat_body(piece, inline_audio(wav), "qwen3-asr"))
    part = body["messages"][0]["content"][0]
    assert part == {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}}
    assert (body["model"], body["temperature"]) == ("qwen3-asr", 0.2)


def test_plain_piece_is_one_user_turn_with_the_audio() -> None:
    piece = PieceRequest(samples=np.zeros(160, dtype=np.int16))
    messages = chat_messages(piece, inline_audio(b"ABC"))
    assert messages == [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": b"ABC", "format": "wav"}}]}
    ]
    assert extra_body(piece) is None


def test_prompt_is_a_system_turn_and_language_a_prefilled_assistant_turn() -> None:
    piece = PieceRequest(samples=np.zeros(160, dtype=np.int16), language="fr", prompt="Noms: Ségolène, Ouagadougou")
    messages = chat_messages(piece, inline_audio(b"ABC"))
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == "Noms: Ségolène, Ouagadougou"
    assert messages[2]["content"] == "language French<asr_text>"
    assert extra_body(piece) == {"continue_final_message": True, "add_generation_prompt": False}


def test_audio_by_url_is_an_audio_url_part() -> None:
    piece = PieceRequest(samples=np.zeros(160, dtype=np.int16))
    messages = chat_messages(piece, audio_at("file:///dev/shm/x/piece.wav"))
    assert messages[0]["content"] == [{"type": "audio_url", "audio_url": {"url": "file:///dev/shm/x/piece.wav"}}]
