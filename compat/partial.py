"""The ASR-6030 warning: a 200 whose transcript misses the pieces that failed.

Both route families flag it the same way: a ``warning`` object in every JSON body
(the reference body, OpenAI's json and verbose_json, the stream's done event) and
the ``X-ASR-Warning`` header. OpenAI's text, srt and vtt bodies have no place for it,
so there the header is the flag.
"""

from __future__ import annotations

import msgspec

from compat.errors import PARTIAL_RESULT_CODE
from compat.transcript import Transcript

WARNING_HEADER = "x-asr-warning"


class PartialWarning(msgspec.Struct):
    """Why a 200 is incomplete."""

    code: str
    message: str
    failed_pieces: list[int]


def partial_warning(transcript: Transcript) -> PartialWarning | None:
    """The ASR-6030 warning for a transcript that misses pieces, else None."""
    if not transcript.partial:
        return None
    return PartialWarning(
        code=PARTIAL_RESULT_CODE,
        message=f"{len(transcript.failed_pieces)} of {transcript.pieces} pieces failed; their text is missing.",
        failed_pieces=transcript.failed_pieces,
    )


def warning_headers(transcript: Transcript) -> dict[str, str]:
    """The header that flags a partial transcript (none for a whole one)."""
    return {WARNING_HEADER: PARTIAL_RESULT_CODE} if transcript.partial else {}
