"""Where the milliseconds the gateway adds to one vLLM call go, stage by stage.

    python -m benchmarks.bench_hop [--requests 600] [--stand-in]

Starts vLLM's CPU build with the tiny Qwen3-ASR checkpoint (vLLM's default thread binding,
as ``bench_vllm --bindings auto``; with ``--stand-in``, an instant stand-in for vLLM's chat
route instead) and one gateway on it that hands pieces over as files (``VLLM_MEDIA_DIR``),
with ``hop_stamps`` loaded into it. One client calls vLLM directly (the 5 s clip as base64
in a chat request, as ``bench_vllm``) and the gateway (the same clip uploaded to the
reference route), interleaved in a random order, at concurrency 1. It prints the p50 of the
whole call each way, and of each stage of a call through the gateway, from
CLOCK_MONOTONIC stamps taken in the client and inside the gateway. Results go to
``benchmarks/results/hop-*.json``; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_vllm import MEMORY, ROOT, direct_chat_body, encoded_form, five_second_clip, tiny_vllm
from benchmarks.results import save
from tests.server import live_server
from tests.vllm_support.vllm_env import build_tiny_checkpoint, ensure_vllm_env, free_port, wait_healthy

WARM_UP = 100

# Consecutive stamps of one call through the gateway, and what lies between them.
STAGES = (
    ("client_sent", "head", "the request's head reaches the gateway"),
    ("head", "body", "the 160 kB upload received"),
    ("body", "pipeline_start", "routing, form, checks"),
    ("pipeline_start", "decode_in", "the pipeline's entry (is it a plain WAV?)"),
    ("decode_in", "decode_out", "decode (WAV read)"),
    ("decode_out", "plan_in", "options, metrics"),
    ("plan_in", "plan_out", "plan (one piece)"),
    ("plan_out", "wav_file_in", "admission, the piece's request, backend entry"),
    ("wav_file_in", "wav_file_out", "the piece's WAV written for vLLM"),
    ("wav_file_out", "vllm_sent", "the chat body"),
    ("vllm_sent", "vllm_answered", "the call to vLLM, as the gateway sees it"),
    ("vllm_answered", "pipeline_end", "answer parsed, merged, logged"),
    ("pipeline_end", "response_start", "rendering"),
    ("response_start", "response_written", "the response written"),
    ("response_written", "client_received", "the response reaches the client"),
)


def stand_in(port: int) -> subprocess.Popen[bytes]:
    """``bench_sdk``'s instant stand-in for vLLM's chat route."""
    return subprocess.Popen([sys.executable, "-m", "benchmarks.bench_sdk", "serve", str(port)], cwd=ROOT)


def measure(vllm: str, gateway: str, requests: int) -> tuple[dict[str, list[float]], list[tuple[int, int]]]:
    """Interleaved calls; the wall times each way, and the client's stamps of each call through the gateway."""
    clip = five_second_clip()
    direct_body = direct_chat_body(clip)
    form = encoded_form(("five.wav", clip))
    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    stamps: list[tuple[int, int]] = []
    with httpx.Client(timeout=60) as http:
        calls: dict[str, Callable[[], httpx.Response]] = {
            "direct": lambda: http.post(
                f"{vllm}/v1/chat/completions", content=direct_body, headers={"Content-Type": "application/json"}
            ),
            "gateway": lambda: http.post(f"{gateway}/v1/asr/transcribe/audio", **form),
        }
        for _ in range(WARM_UP):
            for call in calls.values():
                call().raise_for_status()
        order = list(calls)
        for _ in range(requests):
            random.shuffle(order)
            for name in order:
                sent = time.monotonic_ns()
                calls[name]().raise_for_status()
                received = time.monotonic_ns()
                times[name].append((received - sent) / 1e6)
                if name == "gateway":
                    stamps.append((sent, received))
    return times, stamps


def stage_times(events: list[tuple[str, int]], stamps: list[tuple[int, int]]) -> dict[str, float]:
    """The p50 of each stage, in ms, over the measured calls (the gateway's stamps grouped per call)."""
    calls: list[dict[str, int]] = []
    for name, at in events:
        if name == "head":
            calls.append({})
        if calls:
            calls[-1].setdefault(name, at)
    calls = calls[-len(stamps) :]  # the warm-up's calls came first
    spans: dict[str, list[float]] = {label: [] for _, _, label in STAGES}
    for call, (sent, received) in zip(calls, stamps, strict=True):
        call = {**call, "client_sent": sent, "client_received": received}
        for start, end, label in STAGES:
            spans[label].append((call[end] - call[start]) / 1e6)
    return {label: round(statistics.median(values), 3) for label, values in spans.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600, help="calls each way, after a warm-up of 100")
    parser.add_argument("--stand-in", action="store_true", help="an instant stand-in instead of a real vLLM")
    parser.add_argument("--no-save", action="store_true", help="print only (benchmarks/results is left alone)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        work = Path(folder)
        if args.stand_in:
            port = free_port()
            server = stand_in(port)
            stack.callback(server.wait, 10)
            stack.callback(server.terminate)
            vllm = f"http://127.0.0.1:{port}"
            wait_healthy(vllm, 300, process=server)
            media = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hop-media-", dir=MEMORY)))
        else:
            python = ensure_vllm_env()
            running = stack.enter_context(tiny_vllm(python, build_tiny_checkpoint(python, work / "tiny"), work))
            vllm, media = running.base_url, running.media
        hooks = work / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text("from benchmarks import hop_stamps\n\nhop_stamps.install()\n")
        stamps_file = work / "stamps.json"
        env = {
            "BACKEND": "vllm",
            "VLLM_BASE_URLS": vllm + "/v1",
            "VLLM_MEDIA_DIR": str(media),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(hooks), str(ROOT)]),
            "HOP_STAMPS": str(stamps_file),
        }
        with live_server(work / "gateway.log", env) as gateway:
            times, stamps = measure(vllm, gateway.base_url, args.requests)
        events = [(name, at) for name, at in json.loads(stamps_file.read_text())]
    p50 = {name: statistics.median(values) for name, values in times.items()}
    result: dict[str, Any] = {
        "vllm": "instant stand-in" if args.stand_in else "vLLM CPU, tiny Qwen3-ASR, binding auto",
        "requests_each": args.requests,
        "direct_p50_ms": round(p50["direct"], 3),
        "gateway_p50_ms": round(p50["gateway"], 3),
        "added_p50_ms": round(p50["gateway"] - p50["direct"], 3),
        "stages_p50_ms": stage_times(events, stamps),
    }
    print(json.dumps(result, indent=2))
    if not args.no_save:
        save("hop", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
