"""Decoding: every container and codec the contract names, to 16 kHz mono, transcribed right."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.audio import decode_audio, is_plain_wav
from tests.corpus import clip
from tests.wer import wer

SPEECH = clip("ss_0870")  # 7.1 s, 16 kHz mono WAV

FORMATS = {
    "mp3": [],
    "m4a": ["-c:a", "aac"],
    "flac": [],
    "ogg": ["-c:a", "libvorbis"],
    "opus": ["-c:a", "libopus"],
    "aac": ["-c:a", "aac"],
    "webm": ["-c:a", "libopus"],
    "wav": ["-ar", "44100", "-ac", "2"],  # a WAV libav must resample and mix down
}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    out = {}
    for extension, options in FORMATS.items():
        path = folder / f"speech.{extension}"
        subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(SPEECH.path), *options, str(path)], check=True)
        out[extension] = path
    return out


@pytest.mark.parametrize("extension", list(FORMATS))
async def test_every_format_decodes_and_transcribes(
    client: AsyncTestClient[Litestar], encoded: dict[str, Path], extension: str
) -> None:
    path = encoded[extension]
    with path.open("rb") as file:
        audio = decode_audio(file, max_seconds=600)
    assert audio.duration == pytest.approx(7.1, abs=0.1)
    response = await client.post("/v1/asr/transcribe/audio", files={"file": (path.name, path.read_bytes())})
    assert response.status_code == 200, response.text
    assert wer(SPEECH.reference, response.json()["text"]) < 0.1


def test_plain_wav_is_read_as_libav_would() -> None:
    """16 kHz mono 16-bit WAV skips the decoder: the samples are exactly libav's."""
    with SPEECH.path.open("rb") as file:
        fast = decode_audio(file, max_seconds=600)
    with av.open(str(SPEECH.path)) as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    assert fast.codec == "pcm_s16le"
    assert np.array_equal(fast.samples, np.concatenate(frames))


def test_only_a_small_plain_wav_is_read_on_the_event_loop(encoded: dict[str, Path]) -> None:
    """The pipeline reads a short 16 kHz mono WAV in place; anything that needs libav goes to a thread."""
    size = SPEECH.path.stat().st_size
    with SPEECH.path.open("rb") as file:
        assert is_plain_wav(file, max_bytes=size)
        assert file.tell() == 0
        assert not is_plain_wav(file, max_bytes=size - 1)
    for extension in ("wav", "flac", "mp3"):  # a 44.1 kHz stereo WAV needs resampling
        with encoded[extension].open("rb") as file:
            assert not is_plain_wav(file, max_bytes=10 * size)
