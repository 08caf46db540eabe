"""The gateway's own work per request, with no sockets: the app driven through ASGI in-process.

    python -m benchmarks.bench_asgi [--requests N] [--rounds R] [--baseline GIT_REF] [--no-save]

A 5 s WAV (16 kHz mono, what most clients send) is posted to the reference route (its
default mode; bench_vllm's request), one request after another, on an instant backend (it answers at once), so what is
timed is the gateway alone: routing, form, decoding, planning, admission, the piece's
request, merging, rendering, metrics. With ``--baseline``, the same is run from that
commit's code in another process, alternating round by round, so both see the same
machine; the result is the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARM = 200
# The measuring process: imports ``gateway`` from whatever PYTHONPATH puts first.
CHILD = "--child"


def clip_form() -> tuple[str, bytes]:
    """A multipart body holding a 5 s WAV of the test speech."""
    from benchmarks.bench_vllm import five_second_clip
    from tests.formdata import multipart

    return multipart([("file", ("five.wav", "audio/wav", five_second_clip()))])


async def per_request_ms(requests: int) -> float:
    """Mean milliseconds a request takes through the app on an instant backend."""
    from gateway.app import create_app
    from gateway.backends.base import Capabilities, PieceRequest, PieceResult, ReplicaLoad
    from gateway.settings import from_env
    from tests.asgi import post_form

    class Instant:
        model_id = "instant"
        capabilities = Capabilities(languages=None, word_timestamps=False, translation=False)

        async def start(self) -> None:
            return None

        async def close(self) -> None:
            return None

        async def healthy(self) -> bool:
            return True

        def load(self) -> list[ReplicaLoad]:
            return []

        async def transcribe(self, piece: PieceRequest) -> PieceResult:
            return PieceResult(text="hello there", language="en", segments=None)

    content_type, body = clip_form()
    app = create_app(from_env({"LOG_LEVEL": "WARNING"}, {"metrics_port": 0}), backend=Instant())

    async def one() -> None:
        status, answer = await post_form(app, "/v1/asr/transcribe/audio", content_type, body)
        assert status == 200, answer

    async with app.lifespan():
        for _ in range(WARM):
            await one()
        started = time.perf_counter()
        for _ in range(requests):
            await one()
        return (time.perf_counter() - started) / requests * 1000


def measure_in(code: Path | None, requests: int) -> float:
    """One round in a fresh process, importing the gateway from ``code`` (this checkout when None)."""
    root = Path(__file__).resolve().parent.parent
    # ``-m`` puts the working directory first on sys.path: the baseline's folder holds its gateway and
    # compat; this checkout, after it, the benchmark and the test speech
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_asgi", CHILD, "--requests", str(requests)],
        env=env,
        cwd=code or root,
        capture_output=True,
        text=True,
        check=True,
    )
    child = json.loads(run.stdout.strip().splitlines()[-1])
    assert child["gateway"].startswith(str(code or root)), f"imported the wrong gateway: {child['gateway']}"
    return float(child["ms"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per round (after 200 to warm)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating with the baseline")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also run that commit's gateway, alternating")
    parser.add_argument("--no-save", action="store_true", help="print only; write nothing to benchmarks/results")
    parser.add_argument(CHILD, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import gateway

        print(json.dumps({"gateway": gateway.__file__, "ms": asyncio.run(per_request_ms(args.requests))}))
        return 0

    from benchmarks.bench_vllm import baseline_code
    from benchmarks.results import save

    rounds: dict[str, list[float]] = {"gateway_ms": [], **({"baseline_ms": []} if args.baseline else {})}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        old = stack.enter_context(baseline_code(args.baseline, folder)) if args.baseline else None
        for _ in range(args.rounds):
            rounds["gateway_ms"].append(measure_in(None, args.requests))
            if old is not None:
                rounds["baseline_ms"].append(measure_in(old, args.requests))
    result: dict[str, Any] = {
        "requests_per_round": args.requests,
        "rounds": {name: [round(v, 3) for v in values] for name, values in rounds.items()},
        "gateway_ms_per_request": round(statistics.median(rounds["gateway_ms"]), 3),
    }
    if args.baseline:
        result["baseline"] = args.baseline
        result["baseline_ms_per_request"] = round(statistics.median(rounds["baseline_ms"]), 3)
        result["ratio"] = round(result["gateway_ms_per_request"] / result["baseline_ms_per_request"], 3)
    print(json.dumps(result, indent=2))
    if not args.no_save:
        save("asgi", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
