"""Corpus speech under pink noise, chunked mode on the embedded engine: which words are lost, added or changed.

Usage (from the repo root): ``python -m benchmarks.bench_noise [--baseline GIT_REF] [--seeds 4] [--seconds 180]
[--snr 20 15 10] [--no-save]``

Each file is the corpus clips shuffled with short gaps (``tests.corpus.build_long_input``), with pink noise
added at each signal-to-noise ratio (in dB, against the speech's own RMS; also clean). The file goes to the
reference route in chunked mode, whose pieces are decoded with word times: the last words of a piece are the
ones a noisy tail can lose. Deletions, insertions and substitutions are pooled over the files (jiwer, with the
tests' normaliser). With ``--baseline`` a second server runs that commit's code on the same files, the two
taking turns file by file.

Figures go to docs/benchmarks.md ("Speech under noise").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import jiwer

from benchmarks.bench_vllm import embedded_servers, wav_bytes
from benchmarks.results import save
from tests.corpus import build_long_input, noisy
from tests.server import LiveServer
from tests.wer import normalize

ROUTE = "/v1/asr/transcribe/audio"


def transcribe(server: LiveServer, audio: bytes) -> str:
    response = httpx.post(
        server.base_url + ROUTE,
        files={"file": ("speech.wav", audio, "audio/wav")},
        data={"process_type": "chunked"},
        timeout=600,
    )
    response.raise_for_status()
    return str(response.json()["text"])


def counts(reference: str, hypothesis: str) -> dict[str, int]:
    measured = jiwer.process_words(normalize(reference), normalize(hypothesis))
    return {
        "words": measured.hits + measured.substitutions + measured.deletions,
        "deleted": measured.deletions,
        "inserted": measured.insertions,
        "substituted": measured.substitutions,
    }


def pooled(rows: list[dict[str, int]]) -> dict[str, Any]:
    total = {key: sum(r[key] for r in rows) for key in rows[0]}
    errors = total["deleted"] + total["inserted"] + total["substituted"]
    return {**total, "wer": round(errors / total["words"], 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="GIT_REF", help="also run that commit's gateway, file by file")
    parser.add_argument("--seeds", type=int, default=4, help="shuffles of the corpus")
    parser.add_argument("--seconds", type=float, default=180, help="length of each file")
    parser.add_argument(
        "--snr", type=float, nargs="+", default=[20.0, 15.0, 10.0], help="noise levels, dB under speech"
    )
    parser.add_argument("--no-save", action="store_true", help="print only; write nothing to benchmarks/results")
    args = parser.parse_args()

    levels: list[float | None] = [None, *args.snr]
    results: dict[str, dict[str, list[dict[str, int]]]] = {}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = embedded_servers(stack, folder, args.baseline)
        for seed in range(1, args.seeds + 1):
            speech = build_long_input(args.seconds, seed=100 + seed)
            for snr in levels:
                audio = wav_bytes(noisy(speech.samples, snr, seed))
                label = "clean" if snr is None else f"snr_{snr:g}_db"
                for name, server in servers.items():
                    row = counts(speech.reference, transcribe(server, audio))
                    results.setdefault(name, {}).setdefault(label, []).append(row)
                    print(
                        json.dumps({"seed": seed, "noise": label, "server": name, **row}), file=sys.stderr, flush=True
                    )

    summary: dict[str, Any] = {"seeds": args.seeds, "seconds": args.seconds, "baseline_ref": args.baseline}
    for name, by_level in results.items():
        summary[name] = {label: pooled(rows) for label, rows in by_level.items()}
    print(json.dumps(summary, indent=2))
    if not args.no_save:
        save("noise", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
