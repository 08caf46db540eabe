"""The real embedded engine with several workers: pieces in flight are decoded on parallel threads."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from compat.errors import BackendFailed
from gateway.backends.base import PieceRequest, PieceResult
from gateway.backends.embedded import EmbeddedBackend, EmbeddedConfig, _Entry, bundled_model_path
from gateway.backends.whisper_batch import BatchedWhisper, languages_of
from gateway.backends.whisper_job import DecodeOptions
from gateway.cores import cpu_quota, usable_cores
from tests.corpus import build_long_input
from tests.server import live_server
from tests.wer import wer


@dataclass(frozen=True)
class Step:
    engine: str
    thread: int
    start: float
    end: float
    jobs: int


def record_steps(engine: BatchedWhisper, name: str, steps: list[Step]) -> None:
    """Wrap the engine's step to note which engine ran it, on which thread, when, and for how many pieces."""
    decode_step = engine.step

    def timed_step(jobs: list[object]) -> None:
        started = time.perf_counter()
        decode_step(jobs)  # type: ignore[arg-type]
        steps.append(Step(name, threading.get_ident(), started, time.perf_counter(), len(jobs)))

    engine.step = timed_step  # type: ignore[method-assign,assignment]


async def transcribe_at_once(workers: int, count: int) -> list[Step]:
    pieces = [build_long_input(8, gaps=(0.3,), seed=seed) for seed in range(1, count + 1)]
    backend = EmbeddedBackend(EmbeddedConfig(workers=workers, threads=1, batch_size=2))
    await backend.start()
    steps: list[Step] = []
    assert backend._engine is not None
    record_steps(backend._engine, "workers", steps)
    if backend._solo_engine is not None:
        record_steps(backend._solo_engine, "solo", steps)
    try:
        results = await asyncio.gather(
            *(backend.transcribe(PieceRequest(samples=p.samples, index=i)) for i, p in enumerate(pieces))
        )
    finally:
        await backend.close()
    said = " ".join(r.text for r in results)
    assert wer(" ".join(p.reference for p in pieces), said) <= 0.10, said
    return steps


async def test_one_worker_batches_both_pieces() -> None:
    steps = await transcribe_at_once(workers=1, count=2)
    assert steps[0].jobs == 2, "one worker decodes both pieces in one batch"
    assert {s.engine for s in steps} == {"workers"}, "no second copy of the model with one worker"


async def test_two_workers_take_a_piece_each_at_the_same_time() -> None:
    first, second, *_ = await transcribe_at_once(workers=2, count=2)
    assert first.jobs == second.jobs == 1, "two idle workers take one piece each"
    assert first.thread != second.thread, "on two threads"
    assert max(first.start, second.start) < min(first.end, second.end), "at the same time"
    assert first.engine == second.engine == "workers"


async def test_a_lone_piece_runs_on_every_core() -> None:
    if usable_cores() < 2:
        reason = "one core: there is no copy of the model with more threads to use"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    steps = await transcribe_at_once(workers=2, count=1)
    assert {s.engine for s in steps} == {"solo"}, "a step alone uses the copy of the model that has every core"


async def test_a_step_counts_windows_so_short_rests_share_one() -> None:
    """The batch size bounds windows, not pieces: four short rests fill one window, a whole piece its own."""
    backend = EmbeddedBackend(EmbeddedConfig(workers=1, threads=1, batch_size=1))
    await backend.start()
    try:
        assert backend._engine is not None
        loop = asyncio.get_running_loop()

        def entry(seconds: float, rest: float | None) -> _Entry:
            samples = np.zeros(round(seconds * 16_000), dtype=np.int16)
            piece = PieceRequest(samples=samples)
            options = DecodeOptions(language="en")
            item = _Entry(piece, options, loop.create_future())
            item.job = backend._engine.prepare(samples, options)  # type: ignore[union-attr]
            if rest is not None:  # an early stop left this much of the piece undecoded
                item.job.seek = item.job.content_frames - round(rest * 100)
            return item

        rests = [entry(28, rest=4) for _ in range(5)]
        backend._waiting.extend(rests)
        assert backend._take_batch() == rests[:4], "four rests of 4 s share one 30 s window"
        assert backend._take_batch() == rests[4:]
        whole = [entry(28, rest=None), entry(28, rest=None)]
        backend._waiting.extend(whole)
        assert backend._take_batch() == whole[:1], "a whole piece takes its own window"
    finally:
        await backend.close()


async def test_a_piece_the_engine_cannot_take_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """One piece of a batch refused by the engine (a language its tokenizer lacks; made to fail here, as tiny.en
    takes any) fails by itself: the piece batched with it is transcribed."""
    backend = EmbeddedBackend(EmbeddedConfig(workers=1, threads=1, batch_size=2))
    await backend.start()
    try:
        engine = backend._engine
        assert engine is not None
        prepare = engine.prepare

        def refusing(audio: np.ndarray, options: DecodeOptions) -> object:
            if options.prompt == "refuse me":
                raise ValueError("'fil' is not a valid language code")
            return prepare(audio, options)

        monkeypatch.setattr(engine, "prepare", refusing)
        speech = build_long_input(8, gaps=(0.3,), seed=1)
        steps: list[Step] = []
        record_steps(engine, "workers", steps)
        good, bad = await asyncio.gather(
            backend.transcribe(PieceRequest(samples=speech.samples, index=0)),
            backend.transcribe(PieceRequest(samples=speech.samples, index=1, prompt="refuse me")),
            return_exceptions=True,
        )
        assert await backend.healthy(), "the lane serves on"
    finally:
        await backend.close()
    assert isinstance(bad, BackendFailed), bad
    assert "not a valid language code" in bad.message
    assert isinstance(good, PieceResult), good
    assert wer(speech.reference, good.text) <= 0.1, good.text
    assert steps[0].jobs == 1, "the good piece's first step went on without the refused one"


def test_a_multilingual_vocabulary_gives_the_languages_the_engine_may_be_told() -> None:
    """Codes without a token in the vocabulary (yue before large-v3) and Qwen3-ASR's extras (fil) are not offered."""
    model = WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
    languages = languages_of(model.hf_tokenizer)  # tiny.en's vocabulary holds the multilingual models' tokens
    assert {"en", "fr", "zh", "ja", "haw"} <= languages
    assert "yue" not in languages
    assert "fil" not in languages
    assert BatchedWhisper(model).languages == {"en"}  # an English-only model is told English alone


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),  # cgroup v2: docker run --cpus=2
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),  # no limit
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_a_containers_cpu_quota_is_read(tmp_path: Path, files: dict[str, str], quota: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(tmp_path) == quota
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == (max(1, min(affinity, math.ceil(quota))) if quota else affinity)


def test_the_engine_sizes_itself_to_the_cores_it_may_use(tmp_path: Path) -> None:
    """Started on one core of several (taskset; a container's quota counts the same way): one lane."""
    asr_gateway = str(Path(sys.executable).with_name("asr-gateway"))
    pinned = ["taskset", "-c", str(min(os.sched_getaffinity(0))), asr_gateway, "serve"]  # one core it may use
    for command, lanes in (([asr_gateway, "serve"], usable_cores()), (pinned, 1)):
        with live_server(tmp_path / "log", command=command) as server:
            loaded = [json.loads(line) for line in server.log().splitlines() if "embedded model loaded" in line]
        assert loaded[0]["workers"] == lanes, loaded
