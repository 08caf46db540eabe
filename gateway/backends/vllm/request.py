"""One piece as a vLLM chat request: the audio as a WAV part, the context, the forced language.

The audio goes inline (``input_audio``, base64) or, when vLLM shares a directory
with the gateway, as a ``file://`` URL (``audio_url``; see ``media``).

The chat route, not vLLM's ``/v1/audio/transcriptions``, because only the raw
chat answer keeps the language Qwen3-ASR detected (vLLM's transcription route drops it).
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec
import numpy as np
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)

from gateway.audio import SAMPLE_RATE
from gateway.backends.base import PieceRequest
from gateway.backends.vllm.answer import forced_prefix

# vLLM's chat template options: continue the prefilled assistant turn instead of opening a new one.
CONTINUE_PREFILL: dict[str, Any] = {"continue_final_message": True, "add_generation_prompt": False}


_WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")  # RIFF, fmt (PCM), data

# a chat content part: input_audio (the SDK's type) or audio_url (vLLM's, not in the SDK's chat types)
AudioPart = dict[str, Any]


def _wav_header(frames: int) -> bytes:
    """The 44-byte header of a 16 kHz mono 16-bit WAV of ``frames`` samples."""
    size = 2 * frames
    pcm_format = (16, 1, 1, SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16)  # chunk size, PCM, mono, rate, bytes/s, align, bits
    return _WAV_HEADER.pack(b"RIFF", 36 + size, b"WAVE", b"fmt ", *pcm_format, b"data", size)


def wav_parts(pcm: np.ndarray) -> tuple[bytes, memoryview]:
    """A 16 kHz mono 16-bit WAV of 16-bit PCM: its header, and the samples as they are (no copy)."""
    return _wav_header(len(pcm)), np.ascontiguousarray(pcm, dtype="<i2").data


def wav_bytes(pcm: np.ndarray) -> bytes:
    """The WAV of ``wav_parts`` in one piece."""
    return b"".join(wav_parts(pcm))


def inline_audio(wav: bytes) -> AudioPart:
    """The audio inside the request: a WAV (``wav_bytes``), written as base64 by ``chat_body``.

    msgspec writes bytes as base64 itself: a 5 s piece's body in 0.12 ms, against 0.43 ms for
    base64-encoding first and then writing the string (measured).
    """
    return {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}}


def audio_at(url: str) -> AudioPart:
    """The audio by URL (``file://`` in a directory vLLM may read)."""
    return {"type": "audio_url", "audio_url": {"url": url}}


def chat_messages(piece: PieceRequest, audio: AudioPart) -> list[ChatCompletionMessageParam]:
    """The conversation Qwen3-ASR expects for one piece.

    Args:
        piece: the piece, for its prompt (a system message) and its forced language
            (a prefilled assistant turn ``language English<asr_text>``).
        audio: the piece's audio part (``inline_audio`` or ``audio_at``).
    """
    messages: list[ChatCompletionMessageParam] = []
    if piece.prompt:
        messages.append(ChatCompletionSystemMessageParam(role="system", content=piece.prompt))
    messages.append(
        ChatCompletionUserMessageParam(
            role="user",
            content=[audio],  # type: ignore[list-item]  # audio_url is vLLM's, not in the SDK's chat types
        )
    )
    if piece.language:
        messages.append(ChatCompletionAssistantMessageParam(role="assistant", content=forced_prefix(piece.language)))
    return messages


def extra_body(piece: PieceRequest) -> dict[str, Any] | None:
    """Fields only vLLM knows: continue the prefilled turn when the language is forced."""
    return dict(CONTINUE_PREFILL) if piece.language else None


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class ChatAnswer(msgspec.Struct):
    """The part of vLLM's chat completion the gateway reads."""

    choices: list[_Choice]

    @property
    def text(self) -> str:
        """The first choice's content."""
        return (self.choices[0].message.content or "") if self.choices else ""

    @property
    def cut_short(self) -> bool:
        """Whether vLLM stopped at its length limit."""
        return bool(self.choices) and self.choices[0].finish_reason == "length"


_ENCODER = msgspec.json.Encoder()
ANSWER = msgspec.json.Decoder(ChatAnswer)


def chat_body(piece: PieceRequest, audio: AudioPart, model: str) -> bytes:
    """The JSON body of the chat completion for one piece.

    Built here and sent through the SDK's client as it is: the SDK's own request
    builder walks the whole message (the audio's base64 included) and its response
    models add about 4 ms a request (measured against a plain POST).
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": chat_messages(piece, audio),
        "temperature": piece.temperature or 0.0,
        **(extra_body(piece) or {}),
    }
    return _ENCODER.encode(body)
