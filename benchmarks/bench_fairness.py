"""A short request while long chunked ones run, on the embedded engine: how long it waits.

Usage (from the repo root): ``python -m benchmarks.bench_fairness [--baseline GIT_REF] [--rounds 3] [--long 5]``

Each round sends ``--long`` chunked requests of a 3-minute file (corpus speech) at once, then, 3 s later,
while they run, a 2.8 s clip (the short request), and times both: the short request's latency, and the
time until every long request is done (what the short one costs them). The short clip alone, on the idle
server, is the floor; and the WER of both (pieces taken in another order share windows differently). With
``--baseline`` a second server runs that commit's code; the servers take turns round by round (never at
once: they share the 2 cores), so the machine's drift falls on both.

Figures go to docs/benchmarks.md ("A short request among long ones").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_vllm import embedded_servers, wav_bytes
from benchmarks.results import save
from tests.corpus import Clip, LongInput, build_long_input, clip
from tests.server import LiveServer
from tests.wer import wer

ROUTE = "/v1/asr/transcribe/audio"
SHORT_AFTER = 3.0  # seconds after the long requests start


def one(base_url: str, audio: bytes, mode: str) -> tuple[float, str]:
    """Seconds for one transcription, and its text (raises on any status but 200)."""
    started = time.perf_counter()
    with httpx.Client(timeout=600) as client:
        response = client.post(
            base_url + ROUTE, files={"file": ("audio.wav", audio, "audio/wav")}, data={"process_type": mode}
        )
    response.raise_for_status()
    return time.perf_counter() - started, str(response.json()["text"])


def round_on(server: LiveServer, long_input: LongInput, short: Clip, long_count: int) -> dict[str, float]:
    """One round: the long requests, the short one among them; and the short one alone after."""
    long_audio, short_audio = wav_bytes(long_input.samples), short.path.read_bytes()
    finished: list[float] = []
    texts: list[str] = []
    errors: list[BaseException] = []

    def long_request() -> None:
        try:
            texts.append(one(server.base_url, long_audio, "chunked")[1])
            finished.append(time.perf_counter())
        except BaseException as error:  # noqa: BLE001 - reported after the round
            errors.append(error)

    started = time.perf_counter()
    threads = [threading.Thread(target=long_request) for _ in range(long_count)]
    for thread in threads:
        thread.start()
    time.sleep(SHORT_AFTER)
    short_seconds, short_text = one(server.base_url, short_audio, "chunked")
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a long request failed: {errors[0]}")
    alone, _ = one(server.base_url, short_audio, "chunked")
    return {
        "short_among_long_s": short_seconds,
        "long_all_done_s": max(finished) - started,
        "short_alone_s": alone,
        "long_wer": statistics.mean(wer(long_input.reference, text) for text in texts),
        "short_wer": wer(short.reference, short_text),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="GIT_REF", help="also run that commit's gateway, round by round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long", type=int, default=5, help="long chunked requests at once")
    args = parser.parse_args()

    long_input, short = build_long_input(180, seed=5), clip("goforward")
    rounds: dict[str, list[dict[str, float]]] = {}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = embedded_servers(stack, folder, args.baseline)
        for server in servers.values():  # warm: the model's first steps are slower
            one(server.base_url, short.path.read_bytes(), "chunked")
            one(server.base_url, wav_bytes(long_input.samples), "chunked")
        for number in range(args.rounds):
            for name, server in servers.items():
                result = round_on(server, long_input, short, args.long)
                rounds.setdefault(name, []).append(result)
                print(f"round {number + 1} {name}: {json.dumps(result)}", flush=True)

    summary: dict[str, Any] = {"long_requests": args.long, "rounds": args.rounds, "baseline": args.baseline}
    for name, results in rounds.items():
        summary[name] = {key: round(statistics.median(r[key] for r in results), 4) for key in results[0]}
        summary[name]["rounds"] = results
    print(json.dumps({k: v for k, v in summary.items()}, indent=2, default=str))
    save("fairness", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
