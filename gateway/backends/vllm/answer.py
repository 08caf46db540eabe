"""Qwen3-ASR's answer format: ``language <Name><asr_text><text>``, both ways.

The model names the language it heard in English, capitalised (``English``,
``Haitian Creole``), and ``None`` when it heard no speech. A forced language is
the same prefix, written into the assistant turn before the model continues.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compat.languages import name_of, to_code

TAG = "<asr_text>"
_PREFIX = re.compile(r"^\s*language\s+(?P<name>[^<]*?)\s*$", re.IGNORECASE)
_BARE_PREFIX = re.compile(r"^\s*language(?:\s+(?P<name>[^<]*?))?\s*$", re.IGNORECASE)
# Some answers repeat the prefix inside the text (one per language switch); it is never speech.
_INNER_PREFIX = re.compile(r"\s*language\s+[A-Za-z][A-Za-z -]{0,40}?<asr_text>", re.IGNORECASE)
_NO_SPEECH = "none"


@dataclass(frozen=True)
class Answer:
    """What Qwen3-ASR said about one piece.

    Attributes:
        text: the transcript, whitespace collapsed; empty when nothing was heard.
        language: ISO 639-1 code of the language named, or None (no speech, missing or unknown).
    """

    text: str
    language: str | None


def qwen_language_name(code: str) -> str:
    """The name Qwen3-ASR writes for an ISO 639-1 code ("en" -> "English", "ht" -> "Haitian Creole")."""
    return " ".join(word.capitalize() for word in name_of(code).split())


def forced_prefix(code: str) -> str:
    """The assistant turn that forces a language: ``language English<asr_text>``."""
    return f"language {qwen_language_name(code)}{TAG}"


def parse_answer(raw: str | None) -> Answer:
    """Split a raw answer into its language and text, tolerating what a model may get wrong.

    ``language None<asr_text>`` is no speech; a missing tag leaves either a bare
    ``language X`` (cut short: no text) or plain text (no language); a language name
    that is not known gives no language; extra whitespace is collapsed.
    """
    if not raw or not raw.strip():
        return Answer(text="", language=None)
    head, tag, tail = raw.partition(TAG)
    if not tag:
        bare = _BARE_PREFIX.match(raw)
        name = (bare.group("name") or "") if bare else ""
        if bare and (not name or name.lower() == _NO_SPEECH or _language(name)):
            return Answer(text="", language=_language(name))  # cut short before the text began
        return Answer(text=_clean(raw), language=None)
    prefix = _PREFIX.match(head)
    if prefix is None:  # junk before the tag: keep it out of the transcript, trust nothing of it
        return Answer(text=_clean(tail), language=None)
    return Answer(text=_clean(tail), language=_language(prefix.group("name")))


def _language(name: str) -> str | None:
    name = name.strip()
    if not name or name.lower() == _NO_SPEECH:
        return None
    return to_code(name)


def _clean(text: str) -> str:
    return " ".join(_INNER_PREFIX.sub(" ", text).replace(TAG, " ").split())
