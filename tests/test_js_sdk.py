"""The examples as their users run them, against a live gateway: the official OpenAI JavaScript SDK
(examples/js/transcribe.mjs under Node) and the async Python SDK (examples/openai_async.py).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import srt
import webvtt

from tests.corpus import clip
from tests.node import ROOT, ensure_npm_deps, find_node
from tests.server import LiveServer, live_server
from tests.wer import wer

SPEECH = clip("ss_0870")
JS_EXAMPLE = ROOT / "examples" / "js"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("js-sdk") / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def node() -> str:
    """Node with examples/js's dependencies installed (before the server starts, so a skip is quick)."""
    path = find_node()
    ensure_npm_deps(JS_EXAMPLE)
    return path


def run_example(argv: list[str], server: LiveServer) -> dict[str, str]:
    """Run an example with BASE_URL set to the live server; its output split into its "=== name" sections."""
    result = subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, "BASE_URL": server.base_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stderr}\n{result.stdout}"
    parts = re.split(r"^=== (\S+)\n", result.stdout, flags=re.MULTILINE)
    assert parts[0] == "", f"output before the first section: {parts[0]!r}"
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def check_words(words: list[dict[str, Any]], duration: float) -> None:
    assert words, "words asked for, none returned"
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w["start"] <= w["end"] <= duration for w in words)
    assert wer(SPEECH.reference, " ".join(w["word"] for w in words)) < 0.1


def test_javascript_sdk_every_format_streaming_and_the_reference_route(node: str, server: LiveServer) -> None:
    """npm `openai` (pinned in examples/js/package-lock.json): each format parses and holds the right words."""
    logged_before = len(server.log())
    out = run_example([node, "examples/js/transcribe.mjs", str(SPEECH.path)], server)
    assert list(out) == ["json", "text", "verbose_json", "srt", "vtt", "stream", "reference"]
    # chunking_strategy 'auto' (srt) and {type: 'server_vad'} (stream, sent as chunking_strategy[type]) and
    # process_type=chunked (reference) select chunked mode; the rest run in the default mode, full.
    logged = server.log()[logged_before:].splitlines()
    finished = [json.loads(line) for line in logged if '"transcription done"' in line]
    assert [e["mode"] for e in finished] == ["full", "full", "full", "chunked", "full", "chunked", "chunked"]

    as_json = json.loads(out["json"])
    assert set(as_json) == {"text", "usage"}
    assert wer(SPEECH.reference, as_json["text"]) < 0.1, as_json["text"]
    assert as_json["usage"] == {"type": "duration", "seconds": 8}  # 7.1 s, rounded up as OpenAI bills it

    assert out["text"].strip() == as_json["text"]  # the SDK hands text/plain back as a string

    verbose = json.loads(out["verbose_json"])
    assert verbose["language"] == "english"
    assert verbose["duration"] == pytest.approx(7.1, abs=0.05)
    assert verbose["text"] == as_json["text"]
    check_words(verbose["words"], verbose["duration"])
    assert verbose["segments"], "segments asked for"
    assert " ".join(s["text"].strip() for s in verbose["segments"]) == verbose["text"]

    subtitles = list(srt.parse(out["srt"], ignore_errors=False))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert all(s.start < s.end for s in subtitles)
    assert all(a.end <= b.start for a, b in itertools.pairwise(subtitles))
    assert wer(SPEECH.reference, " ".join(s.content for s in subtitles)) < 0.1

    assert out["vtt"].startswith("WEBVTT\n\n")
    captions = webvtt.from_string(out["vtt"])
    assert captions.captions
    assert all(c.start_in_seconds < c.end_in_seconds <= 7.1 for c in captions)
    assert wer(SPEECH.reference, " ".join(c.text for c in captions)) < 0.1

    events = [json.loads(line) for line in out["stream"].splitlines()]
    types = [e["type"] for e in events]
    assert types[-1] == "transcript.text.done"
    assert len(types) >= 2, types
    assert set(types[:-1]) == {"transcript.text.delta"}, types
    done = events[-1]
    assert "".join(e["delta"] for e in events[:-1]) == done["text"]
    assert wer(SPEECH.reference, done["text"]) < 0.1

    reference = json.loads(out["reference"])
    assert set(reference) == {"text", "language", "request_id"}
    assert reference["request_id"] == "js-example-1"
    assert reference["language"] == "en"
    assert wer(SPEECH.reference, reference["text"]) < 0.1


def test_async_python_example(server: LiveServer) -> None:
    """examples/openai_async.py: several files at once (each its own transcript), verbose_json, streaming."""
    clips = [SPEECH, clip("ss_0890"), clip("goforward")]
    out = run_example([sys.executable, "examples/openai_async.py", *(str(c.path) for c in clips)], server)
    assert list(out) == ["files", "verbose_json", "stream"]

    rows = [line.split("\t", 1) for line in out["files"].splitlines()]
    assert [name for name, _ in rows] == [c.path.name for c in clips]
    for c, (_, text) in zip(clips, rows, strict=True):
        assert wer(c.reference, text) < 0.1, (c.name, text)

    lines = out["verbose_json"].splitlines()
    assert lines[0] == "language=english duration=7.1"
    segments = [line.split("\t") for line in lines if line.startswith("segment\t")]
    assert segments
    assert wer(SPEECH.reference, " ".join(s[3] for s in segments)) < 0.1
    timed = [line.split("\t") for line in lines[1:]]
    check_words([{"start": float(s), "end": float(e), "word": w} for kind, s, e, w in timed if kind == "word"], 7.1)

    stream = [line.split("\t", 1) for line in out["stream"].splitlines()]
    kinds = [k for k, _ in stream]
    assert kinds[-1] == "done"
    assert len(kinds) >= 2, kinds
    assert set(kinds[:-1]) == {"delta"}
    assert "".join(d for _, d in stream[:-1]).split() == stream[-1][1].split()
    assert wer(SPEECH.reference, stream[-1][1]) < 0.1
