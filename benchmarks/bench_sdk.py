"""What one call to vLLM costs the gateway's own CPU, by client: the openai SDK against plain aiohttp.

Usage (from the repo root): ``python -m benchmarks.bench_sdk [--baseline GIT_REF]``

The server is an instant stand-in for vLLM's chat route (a subprocess answering a fixed
completion), so what is measured is the client's side alone: CPU seconds of this process
per call, and wall time per call, at concurrency 1, for

- ``sdk``: ``AsyncOpenAI.post`` as the gateway's vLLM backend called it until the eleventh
  session (the SDK's aiohttp transport, the body already JSON);
- ``sdk_http_client``: the SDK's own HTTP client (httpx2 over aiohttp) without the SDK's
  request building, exactly as the backend calls it now (``Replica.http``);
- ``aiohttp``: one ``aiohttp.ClientSession.post``.

And the whole gateway on the same stand-in (``BACKEND=vllm``, pieces inline and as files):
its CPU per request (from ``/proc``) for the 5 s clip of ``bench_vllm``, sent by one client; and
the same for ``benchmarks.floor_proxy``, the least a Python hop can do for that request, and with
``--baseline`` for a gateway (files) running that commit's code; the servers take turns.

Figures go to docs/benchmarks.md (the +3 ms target of the vLLM hop).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.results import save
from tests.server import LiveServer, free_port, live_server
from tests.vllm_support.vllm_env import wait_healthy

ANSWER = json.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "tiny-asr",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "language English<asr_text>hello there"},
                "finish_reason": "stop",
            }
        ],
    }
).encode()
BODY = json.dumps(
    {
        "model": "tiny-asr",
        "messages": [
            {"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": "file:///dev/shm/piece.wav"}}]}
        ],
    }
).encode()
CALLS = 2000
MEMORY = "/dev/shm" if Path("/dev/shm").is_dir() else None
ROUNDS = 3


def serve(port: int) -> None:
    """The stand-in: ``/health`` and an instant ``/v1/chat/completions``."""
    from aiohttp import web

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="")

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.add_routes([web.get("/health", health), web.post("/v1/chat/completions", chat)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def measure(base: str) -> dict[str, Any]:
    import aiohttp
    import httpx

    from gateway.backends.vllm.client import open_replica

    replica = open_replica(base + "/v1", api_key="", timeout=30)
    sdk = replica.client
    session = aiohttp.ClientSession()
    url = base + "/v1/chat/completions"
    headers = {"Content-Type": "application/json"}

    async def through_sdk() -> bytes:
        response = await sdk.post(
            "/chat/completions", cast_to=httpx.Response, content=BODY, options={"headers": headers}
        )
        return response.content

    async def through_sdk_http_client() -> bytes:
        response = await replica.http.post(replica.chat_url, content=BODY, headers=replica.chat_headers)
        return response.content

    async def through_aiohttp() -> bytes:
        async with session.post(url, data=BODY, headers=headers) as response:
            return await response.read()

    clients: dict[str, Callable[[], Awaitable[bytes]]] = {
        "sdk": through_sdk,
        "sdk_http_client": through_sdk_http_client,
        "aiohttp": through_aiohttp,
    }
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    wall: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for call in clients.values():
            for _ in range(100):
                await call()
        for _ in range(ROUNDS):  # alternated, so that drift falls on all
            for name, call in clients.items():
                cpu_before, wall_before = time.process_time(), time.perf_counter()
                for _ in range(CALLS):
                    await call()
                cpu[name].append((time.process_time() - cpu_before) / CALLS * 1000)
                wall[name].append((time.perf_counter() - wall_before) / CALLS * 1000)
    finally:
        await session.close()
        await sdk.close()
    return {
        name: {
            "cpu_ms_per_call": round(statistics.median(cpu[name]), 3),
            "wall_ms": round(statistics.median(wall[name]), 3),
        }
        for name in clients
    }


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_cpu(gateways: dict[str, LiveServer], requests: int) -> dict[str, dict[str, float]]:
    """Each server's CPU per request, and wall time per request, for the 5 s clip (median of the rounds).

    The servers take turns, ``ROUNDS`` times, so that the machine's drift falls on all of them.
    """
    import httpx

    from benchmarks.bench_vllm import encoded_form, five_second_clip

    clip = five_second_clip()
    form = encoded_form(("five.wav", clip))
    cpu: dict[str, list[float]] = {name: [] for name in gateways}
    wall: dict[str, list[float]] = {name: [] for name in gateways}
    with httpx.Client(timeout=30) as client:
        for gateway in gateways.values():
            for _ in range(50):
                client.post(gateway.base_url + "/v1/asr/transcribe/audio", **form).raise_for_status()
        for _ in range(ROUNDS):
            for name, gateway in gateways.items():
                url = gateway.base_url + "/v1/asr/transcribe/audio"
                cpu_before, wall_before = process_cpu_seconds(gateway.process.pid), time.perf_counter()
                for _ in range(requests):
                    client.post(url, **form).raise_for_status()
                cpu[name].append((process_cpu_seconds(gateway.process.pid) - cpu_before) / requests * 1000)
                wall[name].append((time.perf_counter() - wall_before) / requests * 1000)
    return {
        name: {
            "cpu_ms_per_request": round(statistics.median(cpu[name]), 3),
            "wall_ms": round(statistics.median(wall[name]), 3),
        }
        for name in gateways
    }


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
        return 0
    import argparse

    import uvloop

    from benchmarks.bench_vllm import baseline_code

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="GIT_REF", help="also a gateway (files) from that commit's code")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_sdk", "serve", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, 30, process=server, interval=0.1)
        result: dict[str, Any] = {"calls_each": CALLS * ROUNDS, **uvloop.run(measure(base))}
        env = {"BACKEND": "vllm", "VLLM_BASE_URLS": base + "/v1", "LOG_LEVEL": "WARNING"}
        with ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            media = stack.enter_context(tempfile.TemporaryDirectory(dir=MEMORY))
            files = {**env, "VLLM_MEDIA_DIR": media}
            servers: dict[str, tuple[dict[str, str], list[str] | None, Path | None]] = {
                "gateway_inline": (env, None, None),
                "gateway_files": (files, None, None),
                # the least a hop costs: the floor
                "floor_proxy": (files, [sys.executable, "-m", "benchmarks.floor_proxy"], None),
            }
            if args.baseline:
                result["baseline"] = args.baseline
                old = stack.enter_context(baseline_code(args.baseline, folder))
                servers["baseline_files"] = (files, [sys.executable, "-m", "gateway", "serve"], old)
            gateways = {
                name: stack.enter_context(live_server(folder / f"{name}.log", extra, command=command, cwd=cwd))
                for name, (extra, command, cwd) in servers.items()
            }
            result.update(gateway_cpu(gateways, CALLS))
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(result, indent=2))
    save("sdk", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
