"""Soak: a live server under a steady mix of good and bad requests on both routes, for minutes.

Memory must stay flat, no temporary file may be left, file descriptors must not grow.
Not a test (it takes minutes): figures go to docs/soak.md.

    python -m benchmarks.soak --minutes 10 --concurrency 4
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.corpus import build_long_input, clip, write_wav
from tests.server import live_server


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        temp = work / "server-tmp"
        temp.mkdir()
        minute = write_wav(work / "minute.wav", build_long_input(60, seed=5).samples)
        cases = itertools.cycle(
            [
                ("/v1/asr/transcribe/audio", ("clip.wav", clip("ss_0870").path.read_bytes()), {}, 200),
                ("/v1/audio/transcriptions", ("clip.wav", clip("goforward").path.read_bytes()), {"response_format": "srt"}, 200),
                ("/v1/asr/transcribe/audio", ("minute.wav", minute.read_bytes()), {"process_type": "chunked"}, 200),
                ("/v1/audio/transcriptions", ("text.mp3", b"not audio at all\n" * 100), {}, 415),
                ("/v1/asr/transcribe/audio", ("empty.wav", b""), {}, 400),
                ("/v1/audio/transcriptions", ("cut.wav", minute.read_bytes()[:400_000]), {}, 422),
                ("/v1/audio/transcriptions", ("big.wav", minute.read_bytes() * 3), {}, 413),
                ("/v1/audio/transcriptions", ("clip.wav", clip("cards_005").path.read_bytes()), {"response_format": "bogus"}, 400),
                ("/v1/audio/transcriptions", ("clip.wav", clip("ss_0920").path.read_bytes()), {"response_format": "verbose_json", "timestamp_granularities[]": "word"}, 200),
            ]
        )  # fmt: skip
        lock = threading.Lock()
        statuses: Counter[str] = Counter()
        samples: list[dict[str, float]] = []
        with live_server(
            work / "server.log", {"TMPDIR": str(temp), "MAX_UPLOAD_MB": "5", "LOG_LEVEL": "WARNING"}
        ) as server:
            pid = server.process.pid
            deadline = time.monotonic() + args.minutes * 60
            started = time.monotonic()

            def worker() -> None:
                with httpx.Client(base_url=server.base_url, timeout=300) as http:
                    while time.monotonic() < deadline:
                        with lock:
                            path, upload, fields, expected = next(cases)
                        response = http.post(path, files={"file": upload}, data=fields)
                        with lock:
                            statuses[
                                f"{response.status_code}{'' if response.status_code == expected else ' UNEXPECTED'}"
                            ] += 1

            def sampler() -> None:
                while time.monotonic() < deadline:
                    samples.append(
                        {
                            "t": round(time.monotonic() - started, 1),
                            "rss_mib": round(rss_mib(pid), 1),
                            "fds": fd_count(pid),
                            "temp_entries": len(list(temp.iterdir())),
                        }
                    )
                    time.sleep(5)

            with ThreadPoolExecutor(args.concurrency + 1) as pool:
                pool.submit(sampler)
                for future in [pool.submit(worker) for _ in range(args.concurrency)]:
                    future.result()
            final = {"rss_mib": round(rss_mib(pid), 1), "fds": fd_count(pid), "temp_entries": len(list(temp.iterdir()))}
        warm = samples[min(len(samples) - 1, max(1, len(samples) // 10))]  # after the first tenth: warmed up
        result = {
            "minutes": args.minutes,
            "concurrency": args.concurrency,
            "requests": sum(statuses.values()),
            "statuses": dict(statuses),
            "rss_mib": {"after_warm_up": warm["rss_mib"], "max": max(s["rss_mib"] for s in samples), "end": final["rss_mib"]},
            "fds": {"after_warm_up": warm["fds"], "max": max(s["fds"] for s in samples), "end": final["fds"]},
            "temp_entries_max": max(s["temp_entries"] for s in samples),
            "temp_entries_end": final["temp_entries"],
        }  # fmt: skip
        print(json.dumps(result, indent=2))
        out = Path(__file__).parent / "results"
        out.mkdir(exist_ok=True)
        (out / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
            json.dumps({**result, "samples": samples}, indent=2)
        )
    return 0 if not any("UNEXPECTED" in k for k in statuses) else 1


if __name__ == "__main__":
    raise SystemExit(main())
