"""Pieces written for a vLLM on the same host: gone with their request, whatever ends it."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest

from compat.errors import BackendFailed
from gateway.audio import ON_LOOP_SAMPLES
from gateway.backends.vllm import media as media_module
from gateway.backends.vllm.media import SharedMedia
from gateway.backends.vllm.request import wav_bytes
from tests.fakes import until

LONG = np.zeros(40 * ON_LOOP_SAMPLES, dtype=np.int16)  # 20 minutes: written in a worker thread, for a while


@pytest.fixture
def media(tmp_path: Path) -> Iterator[SharedMedia]:
    shared = SharedMedia(tmp_path)
    shared.open()
    yield shared
    shared.close()


async def test_a_piece_cancelled_while_its_file_is_written_leaves_no_file(
    media: SharedMedia, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client gone while its piece's WAV is written in a thread: the file the thread finishes is removed too."""
    written: list[Path] = []  # appended by the writing thread once its file is whole
    write = media_module._write

    def noted_write(path: Path, samples: np.ndarray) -> None:
        write(path, samples)
        written.append(path)

    monkeypatch.setattr(media_module, "_write", noted_write)

    async def send() -> None:
        async with media.placed(LONG):
            await asyncio.sleep(10)

    for round_ in range(1, 4):
        task = asyncio.create_task(send())
        await asyncio.sleep(0.002)  # the thread has begun writing, the file is not there yet
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: len(written) == round_)  # noqa: B023 - waited for within the round
        await until(lambda: not list(media.folder.iterdir()), 10)  # the write's done callback removes it


@pytest.mark.parametrize("samples", [np.zeros(16_000, dtype=np.int16), LONG], ids=["on the loop", "in a thread"])
async def test_a_file_that_cannot_be_written_is_a_backend_failure(media: SharedMedia, samples: np.ndarray) -> None:
    shutil.rmtree(media.folder)  # the folder gone (or the disk full): the write fails
    with pytest.raises(BackendFailed, match="could not be written for vLLM"):
        async with media.placed(samples):
            pass


@pytest.mark.parametrize("frames", [0, 1, 80_001, 40 * ON_LOOP_SAMPLES], ids=["empty", "one", "5 s", "20 min"])
async def test_the_file_is_the_pieces_wav_byte_for_byte(
    media: SharedMedia, monkeypatch: pytest.MonkeyPatch, frames: int
) -> None:
    """What vLLM reads is the WAV sent inline, even when the OS writes it a little at a time."""
    pcm = np.arange(frames, dtype=np.int64).astype(np.int16)
    writev = os.writev
    calls = []

    def a_little_at_a_time(fd: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return writev(fd, [buffers[0][:7_777]])  # at most 7777 bytes of the first buffer

    for chunked in (False, True):
        if chunked:
            monkeypatch.setattr(os, "writev", a_little_at_a_time)
        async with media.placed(pcm) as url:
            path = Path(url2pathname(urlparse(url).path))
            assert await asyncio.to_thread(path.read_bytes) == wav_bytes(pcm)
        assert not await asyncio.to_thread(path.exists)
    assert len(calls) == 1 + math.ceil(2 * frames / 7_777), "each partial write was resumed where it stopped"
