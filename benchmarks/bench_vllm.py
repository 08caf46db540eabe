"""The vLLM column: the gateway against calling the same real vLLM server directly, side by side in one run.

    python -m benchmarks.bench_vllm [--quick] [--bindings auto,nobind] [--baseline GIT_REF]

For each VLLM_CPU_OMP_THREADS_BIND given (vLLM's default ``auto``, and ``nobind`` as the
tests run it), starts vLLM's CPU build with the tiny Qwen3-ASR checkpoint (tests/vllm_support), and two
gateways with BACKEND=vllm pointed at it: one sending pieces inline (base64, the default)
and one handing them over as files in a shared directory (VLLM_MEDIA_DIR). Measures, each
against its direct baseline: a 5 s clip at concurrency 1 (p50), throughput at concurrency
16 (both against vLLM's chat route with the same audio as base64, the request the gateway
makes, and against vLLM's own transcription route with the same upload, what a client
calls without the gateway), and a 9-minute file in chunked mode against vLLM's own transcription endpoint on the
same file. Calls to the three are interleaved, so all see the same conditions.

``--baseline GIT_REF`` adds a third gateway (files) run from that commit's code, interleaved
with the rest: a change to the gateway measured against what it changes, in one run.
``--floor`` adds ``benchmarks.floor_proxy`` to the 5 s clip's calls: the least any Python hop
on uvicorn adds (the upload read, the WAV written, one plain aiohttp POST), the floor under
the gateway's added milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.results import save
from tests.corpus import SAMPLE_RATE, build_long_input, write_wav
from tests.server import LiveServer, live_server
from tests.vllm_support.vllm_env import (
    build_tiny_checkpoint,
    ensure_vllm_env,
    free_port,
    start_vllm_server,
    stop_vllm_server,
    wait_healthy,
)

MODEL = "tiny-asr"
ROOT = Path(__file__).resolve().parent.parent
MEMORY = "/dev/shm" if Path("/dev/shm").is_dir() else None  # pieces as files: in memory where there is one


@dataclass(frozen=True)
class TinyVllm:
    """A running vLLM (CPU build, tiny checkpoint) and the folder it reads pieces from."""

    base_url: str
    media: Path
    process: subprocess.Popen[bytes]


@contextmanager
def tiny_vllm(python: Path, model: Path, work: Path, binding: str = "auto") -> Iterator[TinyVllm]:
    """vLLM serving ``model`` with ``VLLM_CPU_OMP_THREADS_BIND=binding``, healthy; stopped, its folder gone, after."""
    port = free_port()
    log = work / f"vllm-{binding}.log"
    # made first and removed last: gone even when vLLM fails to start
    with tempfile.TemporaryDirectory(prefix="bench-media-", dir=MEMORY, ignore_cleanup_errors=True) as folder:
        media = Path(folder)
        process = start_vllm_server(
            python,
            model,
            port=port,
            served_model_name=MODEL,
            log_path=log,
            extra_args=("--allowed-local-media-path", str(media)),
            env={"VLLM_CPU_OMP_THREADS_BIND": binding},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, 300, process=process, log_path=log)
            yield TinyVllm(base, media, process)
        finally:
            stop_vllm_server(process)


@contextmanager
def baseline_code(ref: str, work: Path) -> Iterator[Path]:
    """The gateway's packages as they are at ``ref``, extracted into a folder (run ``python -m`` in it)."""
    tree = work / "baseline-code"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "gateway", "compat"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    try:
        yield tree
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def embedded_server(
    stack: ExitStack, folder: Path, name: str, env: dict[str, str], ref: str | None = None
) -> LiveServer:
    """A gateway on the embedded engine until ``stack`` closes: this code, or that commit's (``ref``)."""
    if ref is None:
        return stack.enter_context(live_server(folder / f"{name}.log", env))
    code = stack.enter_context(baseline_code(ref, folder))
    command = [sys.executable, "-m", "gateway", "serve"]
    return stack.enter_context(live_server(folder / f"{name}.log", env, command=command, cwd=code))


def embedded_servers(stack: ExitStack, folder: Path, baseline: str | None) -> dict[str, LiveServer]:
    """The gateway on the embedded engine and, with ``baseline``, a second one running that commit's code."""
    quiet = {"LOG_LEVEL": "WARNING"}
    servers = {"gateway": embedded_server(stack, folder, "gateway", quiet)}
    if baseline:
        servers["baseline"] = embedded_server(stack, folder, "baseline", quiet, baseline)
    return servers


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return out.getvalue()


def five_second_clip() -> bytes:
    """The 5 s clip every vLLM benchmark sends (speech with a short rest), as a WAV file."""
    return wav_bytes(build_long_input(4.6, gaps=(0.2,), seed=12).samples[: 5 * SAMPLE_RATE])


def direct_chat_body(clip: bytes) -> bytes:
    """vLLM's chat request for ``clip`` as base64, what the gateway sends inline; encoded once, so a direct
    client pays no JSON work per call."""
    audio = {"type": "input_audio", "input_audio": {"data": base64.b64encode(clip).decode(), "format": "wav"}}
    request = {"model": MODEL, "messages": [{"role": "user", "content": [audio]}], "temperature": 0.0}
    return json.dumps(request).encode()


def encoded_form(file: tuple[str, bytes], fields: dict[str, str] | None = None) -> dict[str, Any]:
    """A multipart form encoded once, as ``http.post`` keywords: no client pays encoding per call."""
    request = httpx.Request("POST", "http://x/", files={"file": (*file, "audio/wav")}, data=fields)
    return {"content": request.read(), "headers": {"Content-Type": request.headers["Content-Type"]}}


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


async def measure(
    vllm: str, gateways: dict[str, str], work: Path, quick: bool, floor: str | None = None
) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    clip = five_second_clip()
    nine = write_wav(work / "nine.wav", build_long_input(535, seed=13).samples).read_bytes()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        direct_body = direct_chat_body(clip)

        def direct() -> Awaitable[httpx.Response]:
            return http.post(
                f"{vllm}/v1/chat/completions", content=direct_body, headers={"Content-Type": "application/json"}
            )

        clip_form = encoded_form(("five.wav", clip))

        def through(base: str) -> Callable[[], Awaitable[httpx.Response]]:
            def call() -> Awaitable[httpx.Response]:
                return http.post(f"{base}/v1/asr/transcribe/audio", **clip_form)

            return call

        # What a client calls without the gateway: vLLM's own transcription route, the same upload.
        own_clip_form = encoded_form(("five.wav", clip), {"model": MODEL, "response_format": "json"})

        def own_endpoint_clip() -> Awaitable[httpx.Response]:
            return http.post(f"{vllm}/v1/audio/transcriptions", **own_clip_form)

        clip_calls = {
            "direct": direct,
            "own_endpoint": own_endpoint_clip,
            **{name: through(base) for name, base in gateways.items()},
            **({"floor_proxy": through(floor)} if floor else {}),
        }
        hops = [*gateways, *(["floor_proxy"] if floor else [])]
        for _ in range(10):  # warm every path
            for call in clip_calls.values():
                await call()
        rounds = 60 if quick else 300
        latency: dict[str, list[float]] = {name: [] for name in clip_calls}
        for _ in range(rounds):  # interleaved in a random order each round
            for name in rng.permutation(list(clip_calls)):
                latency[name].append(await timed(clip_calls[name]))
        # Short rounds, alternated, many: this VM's speed swings by a third within a minute (vLLM direct 41-62
        # req/s from one 8 s round to the next), so each system is compared with direct in the same round.
        seconds = 4 if quick else 5
        rps: dict[str, list[float]] = {name: [] for name in clip_calls}
        for _ in range(2 if quick else 8):
            for name in rng.permutation(list(clip_calls)):
                rps[name].append(await throughput(clip_calls[name], 16, seconds))

        own_form = encoded_form(("nine.wav", nine), {"model": MODEL, "response_format": "json"})
        chunked_form = encoded_form(
            ("nine.wav", nine), {"model": "whisper-1", "response_format": "verbose_json", "chunking_strategy": "auto"}
        )

        async def own_endpoint() -> httpx.Response:
            return await http.post(f"{vllm}/v1/audio/transcriptions", **own_form)

        def chunked(base: str) -> Callable[[], Awaitable[httpx.Response]]:
            async def call() -> httpx.Response:
                return await http.post(f"{base}/v1/audio/transcriptions", **chunked_form)

            return call

        file_calls = {"vllm_own_endpoint": own_endpoint, **{name: chunked(base) for name, base in gateways.items()}}
        for call in file_calls.values():
            await call()
        long_times: dict[str, list[float]] = {name: [] for name in file_calls}
        for _ in range(5 if quick else 15):
            for name in rng.permutation(list(file_calls)):
                long_times[name].append(await timed(file_calls[name]))
        segments = {name: len((await chunked(base)()).json()["segments"]) for name, base in gateways.items()}
    p50 = {name: statistics.median(times) * 1000 for name, times in latency.items()}
    rps_median = {name: statistics.median(values) for name, values in rps.items()}
    # each round's ratio to direct in that round, then the median: the drift between rounds cancels
    paired = {name: statistics.median(a / b for a, b in zip(rps[name], rps["direct"], strict=True)) for name in hops}
    long_median = {name: statistics.median(times) for name, times in long_times.items()}
    return {
        "clip_5s_concurrency_1": {
            "requests_each": rounds,
            "direct_p50_ms": round(p50["direct"], 2),
            "own_endpoint_p50_ms": round(p50["own_endpoint"], 2),
            **{f"{name}_added_p50_ms": round(p50[name] - p50["direct"], 2) for name in hops},
            **{f"{name}_added_over_own_endpoint_p50_ms": round(p50[name] - p50["own_endpoint"], 2) for name in hops},
        },
        "clip_5s_concurrency_16": {
            "direct_rps": round(rps_median["direct"], 1),
            "own_endpoint_rps": round(rps_median["own_endpoint"], 1),
            **{f"{name}_rps": round(rps_median[name], 1) for name in hops},
            **{f"{name}_ratio": round(paired[name], 3) for name in hops},
            "rounds": {name: [round(value, 1) for value in values] for name, values in rps.items()},
        },
        "nine_minutes": {
            "audio_seconds": 543,
            "vllm_transcriptions_endpoint_s": round(long_median["vllm_own_endpoint"], 3),
            **{f"{name}_chunked_s": round(long_median[name], 3) for name in gateways},
            **{f"{name}_ratio": round(long_median[name] / long_median["vllm_own_endpoint"], 3) for name in gateways},
            **{f"{name}_segments": segments[name] for name in gateways},
        },
    }


def bench_one_binding(
    python: Path,
    model: Path,
    work: Path,
    binding: str,
    quick: bool,
    baseline: Path | None = None,
    floor: bool = False,
) -> dict[str, Any]:
    """Start vLLM with ``VLLM_CPU_OMP_THREADS_BIND=binding`` and two gateways on it (three with a
    baseline's code; the floor proxy too with ``floor``); measure them all."""
    with tiny_vllm(python, model, work, binding) as vllm, ExitStack() as servers:
        base = vllm.base_url
        env = {"BACKEND": "vllm", "VLLM_BASE_URLS": base + "/v1", "LOG_LEVEL": "WARNING"}
        files_env = {**env, "VLLM_MEDIA_DIR": str(vllm.media)}
        inline = servers.enter_context(live_server(work / "gateway.log", env))
        by_file = servers.enter_context(live_server(work / "gateway-files.log", files_env))
        gateways = {"gateway_inline": inline.base_url, "gateway_files": by_file.base_url}
        if baseline is not None:
            old = servers.enter_context(
                live_server(
                    work / "gateway-baseline.log",
                    files_env,
                    command=[sys.executable, "-m", "gateway", "serve"],
                    cwd=baseline,  # first on sys.path with -m: the baseline's gateway, not this checkout's
                )
            )
            gateways["baseline_files"] = old.base_url
        floor_url = None
        if floor:
            proxy = servers.enter_context(
                live_server(
                    work / "floor-proxy.log",
                    files_env,
                    command=[sys.executable, "-m", "benchmarks.floor_proxy"],
                    cwd=ROOT,
                )
            )
            floor_url = proxy.base_url
        return asyncio.run(measure(base, gateways, work, quick, floor_url))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--bindings",
        default="auto,nobind",
        help="VLLM_CPU_OMP_THREADS_BIND values to run, one vLLM server each (auto: vLLM's default, which keeps "
        "a core free of its model threads; nobind: model threads on every core, as the tests run it)",
    )
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="also run a gateway (files) from this commit's code, interleaved with the others",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the 5 s clip through benchmarks.floor_proxy (the least a Python hop adds)",
    )
    args = parser.parse_args()
    python = ensure_vllm_env()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        work = Path(folder)
        baseline = stack.enter_context(baseline_code(args.baseline, work)) if args.baseline else None
        if args.baseline:
            result["baseline"] = subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", args.baseline], check=True, capture_output=True, text=True
            ).stdout.strip()
        model = build_tiny_checkpoint(python, work / "tiny")
        for binding in args.bindings.split(","):
            result[f"bind_{binding}"] = bench_one_binding(
                python, model, work, binding, args.quick, baseline, args.floor
            )
            print(json.dumps({f"bind_{binding}": result[f"bind_{binding}"]}, indent=2), flush=True)
    save("vllm", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
