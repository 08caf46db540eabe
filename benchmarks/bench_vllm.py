"""The vLLM column: the gateway against calling the same real vLLM server directly, side by side in one run.

    python -m benchmarks.bench_vllm [--quick]

Starts vLLM's CPU build with the tiny Qwen3-ASR checkpoint (tests/vllm_support), and the
gateway with BACKEND=vllm pointed at it. Measures, each against its direct baseline:
a 5 s clip at concurrency 1 (p50), throughput at concurrency 16, and a 9-minute file in
chunked mode against vLLM's own transcription endpoint on the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.corpus import SAMPLE_RATE, build_long_input, write_wav
from tests.server import live_server
from tests.vllm_support.vllm_env import (
    build_tiny_checkpoint,
    ensure_vllm_env,
    free_port,
    start_vllm_server,
    stop_vllm_server,
    wait_healthy,
)

MODEL = "tiny-asr"


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return out.getvalue()


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> float:
    started = time.perf_counter()
    response = await call()
    response.raise_for_status()
    return time.perf_counter() - started


async def throughput(call: Callable[[], Awaitable[httpx.Response]], workers: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            (await call()).raise_for_status()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.perf_counter() - started)


async def measure(vllm: str, gateway: str, work: Path, quick: bool) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    five = build_long_input(4.6, gaps=(0.2,), seed=12).samples[: 5 * SAMPLE_RATE]
    clip = wav_bytes(five)
    audio_b64 = base64.b64encode(clip).decode()
    nine = write_wav(work / "nine.wav", build_long_input(535, seed=13).samples)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:

        def direct() -> Awaitable[httpx.Response]:
            return http.post(
                f"{vllm}/v1/chat/completions",
                json={
                    "model": MODEL,
                    "messages": [
                        {
                            "role": "user",
                            "content": [{"type": "input_audio", "input_audio": {"data": audio_b64, "format": "wav"}}],
                        }
                    ],
                    "temperature": 0.0,
                },
            )

        def through_gateway() -> Awaitable[httpx.Response]:
            return http.post(f"{gateway}/v1/asr/transcribe/audio", files={"file": ("five.wav", clip, "audio/wav")})

        for _ in range(10):  # warm both paths
            await direct()
            await through_gateway()
        rounds = 60 if quick else 300
        direct_times, gateway_times = [], []
        for _ in range(rounds):  # interleaved, so both see the same conditions
            first, second = (direct, through_gateway) if rng.random() < 0.5 else (through_gateway, direct)
            a, b = await timed(first), await timed(second)
            (direct_times if first is direct else gateway_times).append(a)
            (gateway_times if first is direct else direct_times).append(b)
        seconds = 5 if quick else 15
        direct_rps = await throughput(direct, 16, seconds)
        gateway_rps = await throughput(through_gateway, 16, seconds)

        async def own_endpoint() -> httpx.Response:
            return await http.post(
                f"{vllm}/v1/audio/transcriptions",
                files={"file": ("nine.wav", nine.read_bytes(), "audio/wav")},
                data={"model": MODEL, "response_format": "json"},
            )

        async def chunked() -> httpx.Response:
            return await http.post(
                f"{gateway}/v1/audio/transcriptions",
                files={"file": ("nine.wav", nine.read_bytes(), "audio/wav")},
                data={"model": "whisper-1", "response_format": "verbose_json", "chunking_strategy": "auto"},
            )

        await own_endpoint()
        await chunked()
        own, ours = [], []
        for _ in range(3 if quick else 7):
            own.append(await timed(own_endpoint))
            ours.append(await timed(chunked))
        segments = len((await chunked()).json()["segments"])
    p50_direct = statistics.median(direct_times) * 1000
    p50_gateway = statistics.median(gateway_times) * 1000
    return {
        "clip_5s_concurrency_1": {
            "direct_p50_ms": round(p50_direct, 2),
            "gateway_p50_ms": round(p50_gateway, 2),
            "added_p50_ms": round(p50_gateway - p50_direct, 2),
            "requests_each": rounds,
        },
        "clip_5s_concurrency_16": {
            "direct_rps": round(direct_rps, 1),
            "gateway_rps": round(gateway_rps, 1),
            "ratio": round(gateway_rps / direct_rps, 3),
        },
        "nine_minutes": {
            "audio_seconds": (535 + 8),
            "vllm_transcriptions_endpoint_s": round(statistics.median(own), 3),
            "gateway_chunked_s": round(statistics.median(ours), 3),
            "ratio": round(statistics.median(ours) / statistics.median(own), 3),
            "gateway_segments": segments,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    python = ensure_vllm_env()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = build_tiny_checkpoint(python, work / "tiny")
        port = free_port()
        log = work / "vllm.log"
        process = start_vllm_server(python, model, port=port, served_model_name=MODEL, log_path=log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, 300, process=process, log_path=log)
            env = {"BACKEND": "vllm", "VLLM_BASE_URLS": base + "/v1", "LOG_LEVEL": "WARNING"}
            with live_server(work / "gateway.log", env) as gateway:
                result = asyncio.run(measure(base, gateway.base_url, work, args.quick))
        finally:
            stop_vllm_server(process)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"vllm-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
