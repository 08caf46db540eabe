"""Language codes and names: ISO 639-1 on the wire, English names where OpenAI uses them.

The reference route and OpenAI's ``language`` field take ISO 639-1 codes; OpenAI's
``verbose_json`` answers the lower-case English name ("english"); Qwen3-ASR answers
a capitalised English name ("English"). Whisper's language set, plus the two
Qwen3-ASR languages that have no ISO 639-1 code (Cantonese, Filipino).
"""

from __future__ import annotations

NAMES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
    "fil": "filipino",
}  # fmt: skip

_BY_NAME = {name: code for code, name in NAMES.items()}
_ALIASES = {"mandarin": "zh", "burmese": "my", "castilian": "es", "flemish": "nl", "farsi": "fa"}
# ISO 639-1 codes that Whisper's set spells otherwise: Javanese is "jw" there, Bokmal is its "norwegian"
_CODES = {"jv": "jw", "nb": "no"}


def to_code(value: str) -> str | None:
    """The ISO 639-1 code for a code or an English name, any case; None if unknown."""
    key = value.strip().lower().replace("_", "-")
    key = _CODES.get(key, key)
    if key in NAMES:
        return key
    base = key.split("-", 1)[0]  # "en-US" -> "en"
    base = _CODES.get(base, base)
    if base in NAMES:
        return base
    return _BY_NAME.get(key) or _ALIASES.get(key)


def name_of(code: str) -> str:
    """The lower-case English name OpenAI uses for a code ("en" -> "english")."""
    return NAMES.get(code, code)
