"""SRT and WebVTT rendering: golden files and millisecond-exact stamps."""

from __future__ import annotations

from compat.subtitles import render_srt, render_vtt
from compat.transcript import Segment

SEGMENTS = [
    Segment(id=0, start=0.0, end=1.9996, text=" Go forward 10 meters."),
    Segment(id=1, start=3599.9995, end=3723.4567, text=" Ten of clubs & <spades> --> hearts"),
    Segment(id=2, start=3724.0, end=3725.0, text="   "),
]

GOLDEN_SRT = """1
00:00:00,000 --> 00:00:02,000
Go forward 10 meters.

2
01:00:00,000 --> 01:02:03,457
Ten of clubs & <spades> --> hearts
"""

GOLDEN_VTT = """WEBVTT

00:00:00.000 --> 00:00:02.000
Go forward 10 meters.

01:00:00.000 --> 01:02:03.457
Ten of clubs &amp; &lt;spades&gt; --&gt; hearts
"""


def test_srt_golden() -> None:
    assert render_srt(SEGMENTS) == GOLDEN_SRT


def test_vtt_golden() -> None:
    assert render_vtt(SEGMENTS) == GOLDEN_VTT


def test_no_thousand_milliseconds() -> None:
    text = render_srt([Segment(id=0, start=1.9999, end=59.9999, text="x")])
    assert "00:00:02,000 --> 00:01:00,000" in text
