"""Transcribe with the official OpenAI async SDK pointed at the gateway: many files at once, verbose_json, streaming.

Usage: python examples/openai_async.py [AUDIO_FILE ...]   (BASE_URL defaults to http://localhost:8000)
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from openai import AsyncOpenAI

BASE_URL = os.environ.get("BASE_URL", "http://localhost:8000")
DEFAULT_AUDIO = ["tests/data/speech/ss_0870.wav", "tests/data/speech/ss_0890.wav"]


async def main(paths: list[Path]) -> None:
    # The gateway needs no key unless API_KEYS is set; the SDK insists on one.
    async with AsyncOpenAI(
        base_url=f"{BASE_URL}/v1", api_key=os.environ.get("OPENAI_API_KEY", "not-needed"), timeout=600
    ) as client:
        # Files: every file at once; the gateway queues what it cannot start yet (429 + Retry-After when full,
        # which the SDK retries).
        results = await asyncio.gather(
            *(client.audio.transcriptions.create(model="whisper-1", file=path) for path in paths)
        )
        print("=== files")
        for path, result in zip(paths, results, strict=True):
            print(f"{path.name}\t{result.text}")

        # verbose_json: language, duration, segments with real times, words when asked for
        verbose = await client.audio.transcriptions.create(
            model="whisper-1",
            file=paths[0],
            response_format="verbose_json",
            timestamp_granularities=["segment", "word"],
        )
        print("=== verbose_json")
        print(f"language={verbose.language} duration={verbose.duration}")
        for segment in verbose.segments or []:
            print(f"segment\t{segment.start:.2f}\t{segment.end:.2f}\t{segment.text.strip()}")
        for word in verbose.words or []:
            print(f"word\t{word.start:.2f}\t{word.end:.2f}\t{word.word}")

        # Streaming: one transcript.text.delta per finished piece (chunked mode), then transcript.text.done
        stream = await client.audio.transcriptions.create(
            model="whisper-1", file=paths[0], stream=True, extra_body={"chunking_strategy": "auto"}
        )
        print("=== stream")
        async for event in stream:
            if event.type == "transcript.text.delta":
                print(f"delta\t{event.delta}")
            elif event.type == "transcript.text.done":
                print(f"done\t{event.text}")


if __name__ == "__main__":
    asyncio.run(main([Path(p) for p in sys.argv[1:] or DEFAULT_AUDIO]))
