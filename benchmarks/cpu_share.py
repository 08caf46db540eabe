"""Where the CPU goes at concurrency 16: vLLM direct, the gateway and the floor proxy, round by round.

    python -m benchmarks.cpu_share [--rounds N] [--seconds S] [--pin]

Starts vLLM's CPU build as ``bench_vllm`` does (the tiny checkpoint, vLLM's default binding, which
keeps one core free of its model threads), a gateway on it (pieces as files) and
``benchmarks.floor_proxy``. In alternated rounds, in a new random order each round, 16 clients
send the 5 s clip to one system for ``--seconds``; for each round it records the requests per
second, how busy each core was (``/proc/stat``) and the CPU each process spent per request
(``/proc/<pid>/stat``): the load generator (this process), vLLM's API server, vLLM's engine (its
engine-core and model-worker processes), the gateway and the floor proxy.

``--pin`` keeps the model's core to the model: every thread of every other process (vLLM's API
server and engine core, the gateway, the floor proxy, this client) is pinned to the cores vLLM
left free of its model worker. Linux otherwise runs them on the model's core whenever the free
one is busy, which stalls the model's steps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.bench_sdk import process_cpu_seconds
from benchmarks.bench_vllm import ROOT, direct_chat_body, encoded_form, five_second_clip, throughput, tiny_vllm
from benchmarks.results import save
from tests.server import live_server
from tests.vllm_support.vllm_env import build_tiny_checkpoint, ensure_vllm_env

WORKER = "VLLM::Worker"  # the title vLLM gives its model-worker process


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        tasks = Path(f"/proc/{current}/task")
        for task in tasks.iterdir() if tasks.is_dir() else ():
            pending += [int(child) for child in (task / "children").read_text().split()]
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes have spent so far (those still alive)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            total += process_cpu_seconds(pid)
    return total


def core_ticks() -> list[tuple[int, int]]:
    """(busy, all) jiffies of each core so far."""
    cores = []
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            counts = [int(value) for value in values]
            idle = counts[3] + counts[4]  # idle and iowait
            cores.append((sum(counts) - idle, sum(counts)))
    return cores


def pin(pids: list[int], cores: set[int]) -> None:
    """Every thread of these processes onto ``cores``."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), cores)


async def measure(
    calls: dict[str, Callable[[], Awaitable[httpx.Response]]],
    processes: dict[str, list[int]],
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    for _ in range(10):  # warm every path
        for call in calls.values():
            (await call()).raise_for_status()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name in rng.permutation(list(calls)):
            cores_before = core_ticks()
            cpu_before = {group: cpu_seconds(pids) for group, pids in processes.items()}
            started = time.perf_counter()
            rps = await throughput(calls[name], 16, seconds)
            elapsed = time.perf_counter() - started
            requests = rps * elapsed
            row = {
                "rps": round(rps, 1),
                "core_busy": [
                    round((busy - busy0) / max(all_ - all0, 1), 3)
                    for (busy0, all0), (busy, all_) in zip(cores_before, core_ticks(), strict=True)
                ],
                "cpu_ms_per_request": {
                    group: round((cpu_seconds(pids) - cpu_before[group]) / requests * 1000, 2)
                    for group, pids in processes.items()
                },
            }
            rows[name].append(row)
            print(name, json.dumps(row), flush=True)
    summary: dict[str, Any] = {}
    for name, system_rows in rows.items():
        summary[name] = {
            "rps_median": round(statistics.median(row["rps"] for row in system_rows), 1),
            "ratio_to_direct": round(
                statistics.median(
                    row["rps"] / direct["rps"] for row, direct in zip(system_rows, rows["direct"], strict=True)
                ),
                3,
            ),
            "rps_range": [min(row["rps"] for row in system_rows), max(row["rps"] for row in system_rows)],
            "cpu_ms_per_request": {
                group: round(statistics.median(row["cpu_ms_per_request"][group] for row in system_rows), 2)
                for group in processes
            },
            "core_busy": [
                round(statistics.median(row["core_busy"][core] for row in system_rows), 3)
                for core in range(len(system_rows[0]["core_busy"]))
            ],
        }
    return {"summary": summary, "rounds": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pin", action="store_true", help="keep every other process off vLLM's model core")
    args = parser.parse_args()
    python = ensure_vllm_env()
    with tempfile.TemporaryDirectory() as folder, ExitStack() as servers:
        work = Path(folder)
        model = build_tiny_checkpoint(python, work / "tiny")
        running = servers.enter_context(tiny_vllm(python, model, work))
        vllm, base = running.process, running.base_url
        env = {
            "BACKEND": "vllm",
            "VLLM_BASE_URLS": base + "/v1",
            "LOG_LEVEL": "WARNING",
            "VLLM_MEDIA_DIR": str(running.media),
        }
        gateway = servers.enter_context(live_server(work / "gateway.log", env))
        floor = servers.enter_context(
            live_server(work / "floor.log", env, command=[sys.executable, "-m", "benchmarks.floor_proxy"], cwd=ROOT)
        )
        vllm_tree = process_tree(vllm.pid)
        worker = [pid for pid in vllm_tree if WORKER in command_line(pid)]
        processes = {
            "client": [os.getpid()],
            "vllm_api_server": [vllm.pid],
            "vllm_engine": [pid for pid in vllm_tree if pid != vllm.pid],
            "gateway": process_tree(gateway.process.pid),
            "floor_proxy": process_tree(floor.process.pid),
        }
        result: dict[str, Any] = {"pinned": args.pin, "rounds": args.rounds, "seconds": args.seconds}
        if args.pin:
            model_cores = set().union(*(os.sched_getaffinity(pid) for pid in worker))
            free_cores = os.sched_getaffinity(0) - model_cores
            others = [pid for group in processes.values() for pid in group if pid not in worker]
            pin(others, free_cores)
            result["model_cores"], result["free_cores"] = sorted(model_cores), sorted(free_cores)

        clip = five_second_clip()
        direct_body = direct_chat_body(clip)
        form = encoded_form(("five.wav", clip))

        async def run() -> dict[str, Any]:
            # Idle connections expire long before a server closes them (the floor proxy and the gateway: 75 s).
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=1.0)
            async with httpx.AsyncClient(timeout=300, limits=limits) as http:
                calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
                    "direct": lambda: http.post(
                        f"{base}/v1/chat/completions",
                        content=direct_body,
                        headers={"Content-Type": "application/json"},
                    ),
                    "gateway_files": lambda: http.post(f"{gateway.base_url}/v1/asr/transcribe/audio", **form),
                    "floor_proxy": lambda: http.post(f"{floor.base_url}/v1/asr/transcribe/audio", **form),
                }
                return await measure(calls, processes, args.rounds, args.seconds)

        result.update(asyncio.run(run()))
    print(json.dumps(result["summary"], indent=2))
    save("cpu_share", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
