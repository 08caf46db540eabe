"""Transcribe with the official OpenAI Python SDK pointed at the gateway.

Usage: python examples/openai_sdk.py [AUDIO_FILE]   (BASE_URL defaults to http://localhost:8000)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from openai import OpenAI

base_url = os.environ.get("BASE_URL", "http://localhost:8000")
audio = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/speech/ss_0870.wav")
# The gateway needs no key unless API_KEYS is set; the SDK insists on one.
client = OpenAI(base_url=f"{base_url}/v1", api_key=os.environ.get("OPENAI_API_KEY", "not-needed"))

# json (default): a Transcription object
result = client.audio.transcriptions.create(model="whisper-1", file=audio)
print("json:", result.text)

# text: a plain str
text = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
print("text:", text.strip())

# verbose_json: language, duration, segments with their real times, and words when asked for
verbose = client.audio.transcriptions.create(
    model="whisper-1", file=audio, response_format="verbose_json", timestamp_granularities=["segment", "word"]
)
print(f"verbose_json: language={verbose.language} duration={verbose.duration}")
for segment in verbose.segments or []:
    print(f"  [{segment.start:6.2f} - {segment.end:6.2f}] {segment.text.strip()}")
print("  words:", " ".join(f"{w.word}@{w.start:.2f}" for w in verbose.words or []))

# srt: subtitles as a str; chunked mode for long files
subtitles = client.audio.transcriptions.create(
    model="whisper-1", file=audio, response_format="srt", extra_body={"chunking_strategy": "auto"}
)
print("srt:\n" + subtitles)
