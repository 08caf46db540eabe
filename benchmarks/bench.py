"""Side-by-side benchmarks: each comparison runs its baseline and the gateway in one run and prints ratios.

Usage (from the repo root, after scripts/test.sh or `pip install -e ".[test,bench]"`):

    python -m benchmarks.bench [decode] [clips] [repeat] [chunked] [inorder] [full] [latency] [memory] [breakdown]
        [--quick]

Nothing here is a test: figures go to docs/benchmarks.md. Timings are wall-clock on
whatever machine runs it; keep the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.results import save
from tests.corpus import LongInput, build_long_input, clip, clips, write_wav
from tests.server import LiveServer, live_server
from tests.wer import normalize, wer

SERVER_ENV: dict[str, str] = {"LOG_LEVEL": "WARNING"}
SAMPLE_RATE = 16_000


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def server_rss_peak(server: LiveServer) -> float:
    """Peak resident memory of the server process so far (VmHWM), in GiB."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    return kib / 1024 / 1024


def post(
    base: str,
    path: Path,
    fields: dict[str, str],
    route: str = "/v1/audio/transcriptions",
    *,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Upload ``path`` as a form; ``client``: a kept-open connection (else a new client per call)."""
    with path.open("rb") as file:
        files = {"file": (path.name, file)}
        if client is None:
            response = httpx.post(base + route, files=files, data=fields, timeout=1200)
        else:
            response = client.post(base + route, files=files, data=fields)
    response.raise_for_status()
    return dict(response.json())


# --- decoding ------------------------------------------------------------------------------------------


def bench_decode(work: Path, quick: bool) -> dict[str, Any]:
    from pydub import AudioSegment

    from gateway.audio import decode_audio

    minutes = 5 if quick else 30
    speech = build_long_input(minutes * 60, seed=1)
    wav = write_wav(work / "long.wav", speech.samples)
    sources = {
        f"{minutes}-min MP3, 16 kHz mono": work / "mono16k.mp3",
        f"{minutes}-min MP3, 44.1 kHz stereo": work / "stereo44k.mp3",
        "3 s WAV, 16 kHz mono": work / "short.wav",
    }
    mono, stereo, short = sources.values()
    ffmpeg("-i", str(wav), "-ar", "16000", "-ac", "1", "-b:a", "64k", str(mono))
    ffmpeg("-i", str(wav), "-ar", "44100", "-ac", "2", "-b:a", "128k", str(stereo))
    write_wav(short, speech.samples[: 3 * SAMPLE_RATE])

    def with_cli(path: Path) -> np.ndarray:
        out = subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-i", str(path), "-ar", "16000", "-ac", "1", "-f", "s16le", "-"],
            check=True,
            capture_output=True,
        ).stdout
        return np.frombuffer(out, dtype=np.int16)

    def with_pyav(path: Path) -> np.ndarray:  # the gateway's decoder: PyAV, or a plain WAV read directly
        with path.open("rb") as file:
            return decode_audio(file, max_seconds=7200).samples

    def with_pydub(path: Path) -> np.ndarray:
        segment = AudioSegment.from_file(path).set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
        return np.array(segment.get_array_of_samples(), dtype=np.int16)

    rows = []
    for label, path in sources.items():
        repeats = 10 if "3 s" in label else (2 if quick else 3)
        lengths = {name: len(fn(path)) / SAMPLE_RATE for name, fn in (("cli", with_cli), ("pyav", with_pyav))}
        cli = median_seconds(functools.partial(with_cli, path), repeats)
        pyav = median_seconds(functools.partial(with_pyav, path), repeats)
        pydub = median_seconds(functools.partial(with_pydub, path), repeats)
        rows.append(
            {
                "source": label,
                "ffmpeg_cli_s": round(cli, 3),
                "gateway_s": round(pyav, 4),
                "pydub_s": round(pydub, 3),
                "gateway_vs_cli": round(pyav / cli, 3),
                "pydub_vs_cli": round(pydub / cli, 2),
                "decoded_seconds": lengths,
            }
        )
        print(json.dumps(rows[-1]))
    return {"decode": rows}


# --- transcription -------------------------------------------------------------------------------------


THREAD_COUNTS = sorted({1, os.cpu_count() or 1})  # the gateway's default per worker, and every core


def load_direct_model(threads: int) -> Any:
    from faster_whisper import WhisperModel

    from gateway.backends.embedded import bundled_model_path

    return WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)


def fastest(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The baseline's best thread count: the bar the gateway is measured against."""
    best = min(runs, key=lambda threads: runs[threads]["seconds"])
    return {**runs[best], "threads": best, "by_threads": runs}


SEEDS = (7, 1, 2, 3, 4)  # shuffles of the clips: seed 7 is the first session's 10-minute file


def timed(run: Callable[[], Any], reference: str) -> dict[str, Any]:
    """Seconds and WER of a faster-whisper call (``run`` returns its segments and info)."""
    started = time.perf_counter()
    segments, _ = run()
    text = " ".join(s.text for s in segments)  # the generator does the work
    return {"seconds": round(time.perf_counter() - started, 2), "wer": round(wer(reference, text), 4)}


def pooled_wer(references: list[str], hypotheses: list[str]) -> dict[str, Any]:
    """WER over clips pooled by words (errors / words), and the error count."""
    words = sum(len(normalize(text).split()) for text in references)
    errors = [
        round(wer(ref, hyp) * len(normalize(ref).split())) for ref, hyp in zip(references, hypotheses, strict=True)
    ]
    return {"wer": round(sum(errors) / words, 4), "errors": sum(errors)}


def ten_second_samples() -> np.ndarray:
    """The latency benchmark's clip: exactly 10 s of the corpus speech, 16-bit."""
    return build_long_input(10, gaps=(0.3,), seed=2).samples[: 10 * SAMPLE_RATE]


def bench_chunked_and_full(work: Path, quick: bool, which: set[str]) -> dict[str, Any]:
    """The 10-minute file, once per shuffle of the clips: each baseline and the gateway side by side.

    The corpus holds 37 s of distinct speech, so a 10-minute file repeats each clip about 16 times
    and one shuffle decides much of a WER (which sentence lands in which window, and what the
    sequential decoder's prompt holds when it gets there). Every system therefore runs on the same
    few shuffles, and the summary pools their words. Full mode runs on the first shuffle only.
    """
    from faster_whisper import BatchedInferencePipeline, decode_audio

    seconds = 180 if quick else 600
    seeds = SEEDS[:1] if quick else SEEDS
    files = []
    for seed in seeds:
        speech = build_long_input(seconds, seed=seed)
        files.append((seed, speech, write_wav(work / f"long-{seed}.wav", speech.samples)))

    # Each baseline at one thread and at every core on the first shuffle; the faster is the bar,
    # and the later shuffles run each baseline at its own faster thread count only.
    models = {threads: load_direct_model(threads) for threads in THREAD_COUNTS}
    rows: list[dict[str, Any]] = []
    for seed, speech, wav in files:
        audio = decode_audio(str(wav))
        row: dict[str, Any] = {"seed": seed, "audio_seconds": round(speech.duration, 1), "words": words(speech)}
        sequential: dict[str, dict[str, Any]] = {}
        peer: dict[str, dict[str, Any]] = {}
        # each baseline at its own best thread count of the first shuffle
        first = rows[0] if rows else None
        for threads in THREAD_COUNTS:
            model = models[threads]
            if first is None or str(threads) == first["faster_whisper_sequential"]["threads"]:
                sequential[str(threads)] = timed(lambda: model.transcribe(audio), speech.reference)  # noqa: B023
            if "chunked" in which and (first is None or str(threads) == first["peer_batched_pipeline"]["threads"]):
                pipeline = BatchedInferencePipeline(model)
                peer[str(threads)] = timed(
                    lambda: pipeline.transcribe(audio, batch_size=8),  # noqa: B023
                    speech.reference,
                )
        row["faster_whisper_sequential"] = fastest(sequential)
        if peer:
            row["peer_batched_pipeline"] = fastest(peer)
        rows.append(row)
        print(json.dumps({"seed": seed, **{k: v for k, v in row.items() if k != "seed"}}))

    # the 10-minute file is a few seconds over full mode's default limit of 600 s
    with live_server(work / "server.log", {**SERVER_ENV, "MAX_FULL_SECONDS": "900"}) as server:
        post(server.base_url, clip("goforward").path, {})  # warm up
        for number, ((seed, speech, wav), row) in enumerate(zip(files, rows, strict=True)):
            for mode in ("chunked", "full"):
                if mode not in which or (mode == "full" and number > 0):
                    continue
                started = time.perf_counter()
                body = post(server.base_url, wav, {"process_type": mode}, route="/v1/asr/transcribe/audio")
                ours = time.perf_counter() - started
                result = {
                    "seconds": round(ours, 2),
                    "wer": round(wer(speech.reference, body["text"]), 4),
                    "vs_sequential": round(ours / row["faster_whisper_sequential"]["seconds"], 3),
                }
                if mode == "chunked":
                    result["vs_peer"] = round(ours / row["peer_batched_pipeline"]["seconds"], 3)
                row[f"gateway_{mode}"] = result
                print(json.dumps({"seed": seed, f"gateway_{mode}": result}))
    out: dict[str, Any] = {"files": rows}
    if "chunked" in which:
        out["pooled"] = pooled(rows)
        print(json.dumps({"pooled": out["pooled"]}))
    return out


def bench_in_order(work: Path, quick: bool) -> dict[str, Any]:
    """The 10-minute file built as the corpus notes suggest: the clips in their order, 0.5 s apart.

    Side by side on that one file: faster-whisper sequential and the peer's batched pipeline at
    each thread count (the faster is the bar), and the gateway's chunked mode, twice.
    """
    from faster_whisper import BatchedInferencePipeline, decode_audio

    speech = build_long_input(180 if quick else 600, gaps=(0.5,), shuffle=False)
    wav = write_wav(work / "in-order.wav", speech.samples)
    audio = decode_audio(str(wav))
    out: dict[str, Any] = {"audio_seconds": round(speech.duration, 1), "words": words(speech)}
    runs: dict[str, dict[str, dict[str, Any]]] = {"faster_whisper_sequential": {}, "peer_batched_pipeline": {}}
    for threads in THREAD_COUNTS:
        model = load_direct_model(threads)
        pipeline = BatchedInferencePipeline(model)
        runs["faster_whisper_sequential"][str(threads)] = timed(lambda: model.transcribe(audio), speech.reference)  # noqa: B023
        runs["peer_batched_pipeline"][str(threads)] = timed(
            lambda: pipeline.transcribe(audio, batch_size=8),  # noqa: B023
            speech.reference,
        )
    for system, by_threads in runs.items():
        out[system] = fastest(by_threads)
    with live_server(work / "in-order.log", SERVER_ENV) as server:
        post(server.base_url, clip("goforward").path, {})  # warm up
        gateway = []
        for _ in range(2):
            started = time.perf_counter()
            body = post(server.base_url, wav, {"process_type": "chunked"}, route="/v1/asr/transcribe/audio")
            seconds = time.perf_counter() - started
            gateway.append({"seconds": round(seconds, 2), "wer": round(wer(speech.reference, body["text"]), 4)})
    out["gateway_chunked"] = gateway
    out["gateway_vs_peer"] = [round(g["seconds"] / out["peer_batched_pipeline"]["seconds"], 3) for g in gateway]
    print(json.dumps(out))
    return {"in_order": out}


def words(speech: LongInput) -> int:
    """The reference's word count, as the WER counts it."""
    return len(normalize(speech.reference).split())


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Over every shuffle: WER weighted by words (errors / words), seconds summed, per system."""
    total_words = sum(row["words"] for row in rows)
    summary: dict[str, Any] = {"files": len(rows), "words": total_words}
    for system in ("faster_whisper_sequential", "peer_batched_pipeline", "gateway_chunked"):
        errors = sum(row[system]["wer"] * row["words"] for row in rows)
        summary[system] = {
            "wer": round(errors / total_words, 4),
            "wer_by_file": [row[system]["wer"] for row in rows],
            "mean_seconds": round(statistics.mean(row[system]["seconds"] for row in rows), 2),
            "seconds_by_file": [row[system]["seconds"] for row in rows],
        }
    return summary


def bench_clips(work: Path) -> dict[str, Any]:
    """Each corpus clip on its own: the model's own accuracy on this speech, with nothing to condition on.

    Every word of a long file built from the clips is one of these words, so this pooled WER is
    what a decoder that conditions on nothing reaches on the long files too (a sequential decoder
    can do better or worse there, by copying earlier text: docs/benchmarks.md).
    """
    from faster_whisper import decode_audio

    model = load_direct_model(1)
    references: list[str] = []
    direct: list[str] = []
    gateway: list[str] = []
    with live_server(work / "clips.log", SERVER_ENV) as server, httpx.Client(timeout=60) as client:
        for speech in clips():
            references.append(speech.reference)
            segments, _ = model.transcribe(decode_audio(str(speech.path)))
            direct.append(" ".join(segment.text for segment in segments))
            gateway.append(post(server.base_url, speech.path, {}, client=client)["text"])
    out = {
        "clips": len(references),
        "words": sum(len(normalize(text).split()) for text in references),
        "faster_whisper_direct": pooled_wer(references, direct),
        "gateway": pooled_wer(references, gateway),
        "misheard": sorted(
            {
                f"{normalize(ref)} -> {normalize(hyp)}"
                for ref, hyp in zip(references, direct, strict=True)
                if wer(ref, hyp) > 0
            }
        ),
    }
    print(json.dumps(out))
    return {"clips": out}


def bench_repeat(work: Path, quick: bool) -> dict[str, Any]:
    """The same file, chunked, again and again: words invented or lost at random show up here.

    Which pieces share a step, and so the numbers of each batch, changes from run to run, and
    with it what a sampled fallback invents. The file is the streaming test's (140 s, seed 21,
    two windows a step).
    """
    import jiwer

    speech = build_long_input(140, seed=21)
    wav = write_wav(work / "repeat.wav", speech.samples)
    runs = []
    with (
        live_server(work / "repeat.log", {**SERVER_ENV, "EMBEDDED_BATCH_SIZE": "2"}) as server,
        httpx.Client(timeout=300) as client,
    ):
        for _ in range(5 if quick else 15):
            text = post(server.base_url, wav, {"chunking_strategy": "auto"}, client=client)["text"]
            counts = jiwer.process_words(normalize(speech.reference), normalize(text))
            runs.append(
                {"wer": round(wer(speech.reference, text), 4), "inserted": counts.insertions, "lost": counts.deletions}
            )
    out = {
        "runs": len(runs),
        "runs_with_words_inserted": sum(1 for run in runs if run["inserted"]),
        "most_inserted": max(run["inserted"] for run in runs),
        "most_lost": max(run["lost"] for run in runs),
        "wer_range": [min(run["wer"] for run in runs), max(run["wer"] for run in runs)],
    }
    print(json.dumps(out))
    return {"repeat": out}


# A pause before each timed call: the previous call's idle compute threads (CTranslate2's
# OpenMP workers spin a while before they sleep) must not run into the next one's time.
SETTLE_SECONDS = 0.3


def bench_latency(work: Path, quick: bool) -> dict[str, Any]:
    """A 10 s clip at concurrency 1: the gateway over HTTP against faster-whisper called directly.

    The calls are interleaved (direct at one thread, direct at every core, the gateway, and
    again), so that a slow spell of a shared machine falls on all three alike.
    """
    from faster_whisper import decode_audio

    ten = write_wav(work / "ten_seconds.wav", ten_second_samples())
    repeats = 10 if quick else 30
    audio = decode_audio(str(ten))
    models = {str(threads): load_direct_model(threads) for threads in THREAD_COUNTS}
    times: dict[str, list[float]] = {name: [] for name in [*models, "gateway"]}
    # One kept-open client, as an SDK holds one: a new httpx client per call costs the
    # client itself about 10 ms (an SSL context and a connection), which is not the gateway's.
    with live_server(work / "latency.log", SERVER_ENV) as server, httpx.Client(timeout=60) as client:
        post(server.base_url, ten, {}, client=client)
        for model in models.values():
            list(model.transcribe(audio)[0])
        for _ in range(repeats):
            for threads, model in models.items():
                time.sleep(SETTLE_SECONDS)
                times[threads].append(median_seconds(lambda: list(model.transcribe(audio)[0]), 1))  # noqa: B023
            time.sleep(SETTLE_SECONDS)
            times["gateway"].append(median_seconds(lambda: post(server.base_url, ten, {}, client=client), 1))
    direct_by_threads = {threads: round(statistics.median(times[threads]), 3) for threads in models}
    gateway = times["gateway"]
    out: dict[str, Any] = {
        "clip_seconds": round(len(audio) / SAMPLE_RATE, 2),
        "direct_p50_s": min(direct_by_threads.values()),
        "direct_p50_s_by_threads": direct_by_threads,
        "gateway_p50_s": round(statistics.median(gateway), 3),
        "gateway_p90_s": round(sorted(gateway)[int(0.9 * len(gateway)) - 1], 3),
    }
    out["gateway_vs_direct"] = round(out["gateway_p50_s"] / out["direct_p50_s"], 3)
    print(json.dumps(out))
    return {"latency": out}


# CTranslate2 settings read at start-up, each tried in a process of its own by ``breakdown``
CT2_VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "isa_avx512": {"CT2_FORCE_CPU_ISA": "AVX512"},
    "packed_gemm": {"CT2_PACKED_GEMM": "1"},
    "mkl": {"CT2_USE_MKL": "1"},
}


def direct_ten_seconds(repeats: int) -> float:
    """Median seconds of faster-whisper (2 threads) on the 10 s clip, in this process."""
    model = load_direct_model(max(THREAD_COUNTS))
    audio = ten_second_samples().astype(np.float32) / np.float32(32768.0)
    list(model.transcribe(audio)[0])
    times = []
    for _ in range(repeats):
        time.sleep(SETTLE_SECONDS)
        times.append(median_seconds(lambda: list(model.transcribe(audio)[0]), 1))
    return statistics.median(times)


def bench_breakdown(work: Path, quick: bool) -> dict[str, Any]:
    """Where a 10 s clip's time goes, and what the decoder's settings would trade (no server involved).

    Interleaved in one process: faster-whisper direct, the gateway's engine on the same model
    (``BatchedWhisper``), direct without timestamp tokens; the features and the encoder timed
    alone. Then CTranslate2's start-up settings, each in its own process, and the clips' WER
    at beam 5, beam 10 and greedy.
    """
    from faster_whisper import decode_audio
    from faster_whisper.audio import pad_or_trim

    from gateway.backends.whisper_batch import BatchedWhisper
    from gateway.backends.whisper_job import DecodeOptions

    repeats = 4 if quick else 10
    model = load_direct_model(max(THREAD_COUNTS))
    engine = BatchedWhisper(model)
    audio = ten_second_samples().astype(np.float32) / np.float32(32768.0)
    calls: dict[str, Callable[[], object]] = {
        "direct": lambda: list(model.transcribe(audio)[0]),
        "engine": lambda: engine.decode([audio], DecodeOptions()),
        "direct_without_timestamps": lambda: list(model.transcribe(audio, without_timestamps=True)[0]),
        "features": lambda: model.feature_extractor(audio),
        "encoder": lambda: model.encode(pad_or_trim(model.feature_extractor(audio))),
    }
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            time.sleep(SETTLE_SECONDS)
            times[name].append(median_seconds(call, 1))
    medians = {name: round(statistics.median(values), 4) for name, values in times.items()}
    medians["beam_search_and_rest"] = round(medians["direct"] - medians["encoder"], 4)

    ct2: dict[str, float] = {}
    for name, env in CT2_VARIANTS.items():
        run = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench", "_direct_ten_seconds", *(["--quick"] if quick else [])],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        ct2[name] = json.loads(run.stdout.strip().splitlines()[-1])["seconds"]

    references = [speech.reference for speech in clips()]
    audios = [decode_audio(str(speech.path)) for speech in clips()]
    accuracy = {}
    for name, options in {"beam_5": {}, "beam_10": {"beam_size": 10}, "greedy": {"beam_size": 1}}.items():
        heard = [" ".join(s.text for s in model.transcribe(clip_audio, **options)[0]) for clip_audio in audios]
        accuracy[name] = pooled_wer(references, heard)
    out = {"ten_second_clip_s": medians, "ct2_settings_direct_s": ct2, "clips_wer_by_decoder": accuracy}
    print(json.dumps(out))
    return {"breakdown": out}


def bench_memory(work: Path, quick: bool) -> dict[str, Any]:
    """Peak server RSS while it transcribes a long file in chunked mode (and the idle RSS before)."""
    minutes = 5 if quick else 30
    speech = build_long_input(minutes * 60 - 5, seed=4)
    wav = write_wav(work / "memory.wav", speech.samples)
    mp3 = work / "memory.mp3"
    ffmpeg("-i", str(wav), "-b:a", "64k", str(mp3))
    with live_server(work / "memory.log", SERVER_ENV) as server:
        post(server.base_url, clip("goforward").path, {})
        idle = server_rss_peak(server)
        samples: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                status = Path(f"/proc/{server.process.pid}/status").read_text()
                samples.append(next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS")) / 2**20)
                time.sleep(0.2)

        with ThreadPoolExecutor(1) as pool:
            pool.submit(watch)
            started = time.perf_counter()
            body = post(server.base_url, mp3, {"process_type": "chunked"}, route="/v1/asr/transcribe/audio")
            elapsed = time.perf_counter() - started
            stop.set()
        peak = server_rss_peak(server)
    out = {
        "audio_minutes": round(speech.duration / 60, 1),
        "upload": "MP3, 64 kb/s",
        "idle_rss_gib": round(idle, 3),
        "peak_rss_gib": round(peak, 3),
        "seconds": round(elapsed, 1),
        "wer": round(wer(speech.reference, body["text"]), 4),
    }
    print(json.dumps(out))
    return {"memory": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "which", nargs="*", default=["decode", "clips", "repeat", "chunked", "full", "latency", "memory"]
    )
    parser.add_argument("--quick", action="store_true", help="shorter inputs, fewer repeats (a smoke run)")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="a setting for the gateway"
    )
    args = parser.parse_args()
    if args.which == ["_direct_ten_seconds"]:  # one CTranslate2 setting, in a process of its own
        print(json.dumps({"seconds": round(direct_ten_seconds(4 if args.quick else 10), 4)}))
        return 0
    SERVER_ENV.update(item.split("=", 1) for item in args.server_env)
    which = set(args.which)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if "decode" in which:
            results |= bench_decode(work, args.quick)
        if "clips" in which:
            results |= bench_clips(work)
        if "repeat" in which:
            results |= bench_repeat(work, args.quick)
        if which & {"chunked", "full"}:
            results["transcription"] = bench_chunked_and_full(work, args.quick, which)
        if "inorder" in which:
            results |= bench_in_order(work, args.quick)
        if "latency" in which:
            results |= bench_latency(work, args.quick)
        if "memory" in which:
            results |= bench_memory(work, args.quick)
        if "breakdown" in which:
            results |= bench_breakdown(work, args.quick)
    print(f"results: {save('bench', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
