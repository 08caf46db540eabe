"""SubRip (SRT) and WebVTT files from a transcript's segments.

Times are rounded once to integer milliseconds and split with ``divmod``, so a
stamp never shows 1000 ms or drifts (speaches' ``(t * 1000) % 1000`` bug).
"""

from __future__ import annotations

from compat.transcript import Segment


def _clock(seconds: float, separator: str) -> str:
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _one_line(text: str) -> str:
    # A blank line ends a cue in both formats; keep each cue's text on one line.
    return " ".join(text.split())


def render_srt(segments: list[Segment]) -> str:
    """The segments as a SubRip file (cues numbered from 1)."""
    cues = []
    for number, segment in enumerate((s for s in segments if s.text.strip()), start=1):
        cues.append(
            f"{number}\n{_clock(segment.start, ',')} --> {_clock(segment.end, ',')}\n{_one_line(segment.text)}\n"
        )
    return "\n".join(cues)


def _vtt_text(text: str) -> str:
    # WebVTT cue text: '&' and '<' start entities and tags, and "-->" is not allowed.
    return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(segments: list[Segment]) -> str:
    """The segments as a WebVTT file."""
    cues = [
        f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{_vtt_text(s.text)}\n" for s in segments if s.text.strip()
    ]
    return "WEBVTT\n\n" + "\n".join(cues)
