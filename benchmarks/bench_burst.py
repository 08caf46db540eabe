"""A burst of long uploads on the embedded engine: what the requests over the limit cost the server.

Usage (from the repo root): ``python -m benchmarks.bench_burst [--baseline GIT_REF] [--clients 40] [--minutes 30]
[--window 45] [--places 25] [--queue-seconds 10] [--no-save]``

``--clients`` clients at once each upload the same long MP3 (corpus speech, 64 kb/s) to the reference
route in chunked mode. ``--places`` of them run (``MAX_CONCURRENT_CHUNKED``, default 25 as a user runs
it); the others wait up to ``--queue-seconds`` (``QUEUE_TIMEOUT_SECONDS``) for a place, then get a 429.
Each client gives up after ``--window`` seconds. Measured, for each server:

- its peak resident memory (``VmHWM``), and at idle before the burst;
- each answer's status and when it came (a client that gave up counts as ``gave_up``);
- how many files it decoded by the end of the window (its ``ffmpeg_convert`` counter);
- a 10 s MP3 sent in full mode 5 s into the burst (full mode has places of its own): its status and
  how long it took, that is what the burst costs a short request.

With ``--baseline`` the same burst goes to a server running that commit's code. The servers run one
after the other, each started fresh and stopped after its window, so that neither works through the
other's burst. Figures go to docs/benchmarks.md ("A burst of long uploads").
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench import server_rss_peak
from benchmarks.bench_vllm import embedded_server
from benchmarks.results import save
from tests.corpus import build_long_input, write_wav
from tests.server import LiveServer

ROUTE = "/v1/asr/transcribe/audio"


SHORT_AFTER = 5.0  # seconds into the burst when the short request is sent


def speech_mp3(folder: Path, seconds: float, name: str) -> bytes:
    """Corpus speech of that length as a 64 kb/s MP3 (what a meeting recording weighs)."""
    wav = write_wav(folder / f"{name}.wav", build_long_input(seconds, seed=4).samples)
    mp3 = folder / f"{name}.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-b:a", "64k", str(mp3)], check=True)
    return mp3.read_bytes()


def decodes(server: LiveServer) -> float:
    """Files the server has decoded so far, from its metrics."""
    text = httpx.get(server.base_url + "/metrics", timeout=30).text
    found = re.search(r'^\w+_ffmpeg_convert_total\{status="success"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def send(server: LiveServer, audio: bytes, mode: str, timeout: float) -> str:
    """One upload's status (``gave_up`` past ``timeout``)."""
    try:
        response = httpx.post(
            server.base_url + ROUTE,
            files={"file": ("meeting.mp3", audio, "audio/mpeg")},
            data={"process_type": mode},
            timeout=max(1.0, timeout),
        )
    except httpx.TimeoutException:
        return "gave_up"
    return str(response.status_code)


def burst(server: LiveServer, audio: bytes, short: bytes, clients: int, window: float) -> dict[str, Any]:
    """Every client at once, and a short request among them; what came back, when, and what it cost the server."""
    idle = server_rss_peak(server)
    answers: list[tuple[str, float]] = []
    lock = threading.Lock()
    started = time.perf_counter()

    def one(_: int) -> None:
        status = send(server, audio, "chunked", window - (time.perf_counter() - started))
        with lock:
            answers.append((status, time.perf_counter() - started))

    def short_one() -> tuple[str, float]:
        time.sleep(SHORT_AFTER)
        sent = time.perf_counter()
        status = send(server, short, "full", window - (sent - started))
        return status, time.perf_counter() - sent

    with ThreadPoolExecutor(clients + 1) as pool:
        short_answer = pool.submit(short_one)
        list(pool.map(one, range(clients)))
        short_status, short_seconds = short_answer.result()
    refused = sorted(seconds for status, seconds in answers if status == "429")
    return {
        "idle_rss_gib": round(idle, 3),
        "peak_rss_gib": round(server_rss_peak(server), 3),
        "statuses": dict(Counter(status for status, _ in answers)),
        "first_429_s": round(refused[0], 1) if refused else None,
        "last_429_s": round(refused[-1], 1) if refused else None,
        "decoded_files": decodes(server),
        "short_request": {"status": short_status, "seconds": round(short_seconds, 2)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="GIT_REF", help="also send the burst to that commit's gateway")
    parser.add_argument("--clients", type=int, default=40, help="uploads sent at once")
    parser.add_argument("--minutes", type=float, default=30, help="length of the file each sends")
    parser.add_argument("--window", type=float, default=45, help="seconds each client waits for its answer")
    parser.add_argument("--places", type=int, default=25, help="MAX_CONCURRENT_CHUNKED of the servers")
    parser.add_argument("--queue-seconds", type=float, default=10, help="QUEUE_TIMEOUT_SECONDS of the servers")
    parser.add_argument("--no-save", action="store_true", help="print only; write nothing to benchmarks/results")
    args = parser.parse_args()

    env = {
        "LOG_LEVEL": "WARNING",
        "MAX_CONCURRENT_CHUNKED": str(args.places),
        "QUEUE_TIMEOUT_SECONDS": str(args.queue_seconds),
    }
    summary: dict[str, Any] = {
        "clients": args.clients,
        "minutes": args.minutes,
        "window_s": args.window,
        "places": args.places,
        "queue_seconds": args.queue_seconds,
        "baseline_ref": args.baseline,
    }
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        audio = speech_mp3(folder, args.minutes * 60 - 5, "long")
        short = speech_mp3(folder, 10, "short")
        summary["upload_mb"] = round(len(audio) / 1e6, 1)
        runs = [("gateway", None)] + ([("baseline", args.baseline)] if args.baseline else [])
        for name, ref in runs:
            with ExitStack() as stack:
                server = embedded_server(stack, folder, name, env, ref)
                summary[name] = burst(server, audio, short, args.clients, args.window)
                print(json.dumps({name: summary[name]}), file=sys.stderr, flush=True)
    print(json.dumps(summary, indent=2))
    if not args.no_save:
        save("burst", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
