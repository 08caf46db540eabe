"""Decoding: every container and codec the contract names, to 16 kHz mono, transcribed right."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from compat.errors import DecoderFailed, UnsupportedAudio
from gateway.audio import decode_audio, is_plain_wav
from tests.corpus import clip, read_wav
from tests.wer import wer

SPEECH = clip("ss_0870")  # 7.1 s, 16 kHz mono WAV
REFERENCE = "/v1/asr/transcribe/audio"

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


def encode(ffmpeg: str, path: Path, *arguments: str) -> Path:
    """What ffmpeg writes to ``path`` from ``arguments`` (its inputs and options)."""
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", *arguments, str(path)], check=True)
    return path


async def test_an_id3_tag_naming_xing_or_info_is_no_length_tag(
    client: AsyncTestClient[Litestar], ffmpeg: str, tmp_path: Path
) -> None:
    """The Xing/Info tag is looked for inside the first MPEG frame only, not in the ID3 tag's text.

    A VBR MP3 without one, opening with 4 s of silence: libav guesses about 37 s from its first frames'
    bitrate, and that guess was taken for a stated length (too long for 20 s, or a cut 11 s file).
    """
    silence = ["-f", "lavfi", "-t", "4", "-i", "anullsrc=r=16000:cl=mono"]
    vbr = ["-c:a", "libmp3lame", "-q:a", "6", "-write_xing", "0"]
    tags = ["-metadata", "artist=Xing Wang", "-metadata", "title=Info session"]
    joined = ["-filter_complex", "concat=n=2:v=0:a=1"]
    path = encode(ffmpeg, tmp_path / "tagged.mp3", *silence, "-i", str(SPEECH.path), *joined, *vbr, *tags)
    for limit in (600, 20):
        with path.open("rb") as file:
            assert decode_audio(file, max_seconds=limit).duration == pytest.approx(11.1, abs=0.2)
    upload = {"file": (path.name, path.read_bytes())}
    response = await client.post(REFERENCE, files=upload, data={"process_type": "chunked"})
    assert response.status_code == 200, response.text
    assert wer(SPEECH.reference, response.json()["text"]) < 0.1


def with_id3_footer(mp3: bytes) -> bytes:
    """``mp3``'s ID3v2.4 tag given the footer its header may announce: 10 more bytes between tag and audio."""
    size = 0
    for byte in mp3[6:10]:
        size = size << 7 | byte
    header = mp3[:5] + bytes([mp3[5] | 0x10]) + mp3[6:10]
    return header + mp3[10 : 10 + size] + b"3DI" + header[3:] + mp3[10 + size :]


def test_the_length_tag_is_found_behind_cover_art(ffmpeg: str, tmp_path: Path) -> None:
    """Cover art (about 600 kB of noise here) puts the first frame, and its Info tag, far into the file.

    The ID3 tag's header gives its size, plus 10 bytes where it has a footer; a cut is then seen.
    """
    noise = "nullsrc=s=460x460,geq=random(1)*255:random(2)*255:random(3)*255"
    cover = encode(ffmpeg, tmp_path / "cover.png", "-f", "lavfi", "-i", noise, "-frames:v", "1")
    art = ["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-id3v2_version", "4"]
    path = encode(ffmpeg, tmp_path / "covered.mp3", "-i", str(SPEECH.path), *art, "-b:a", "64k")
    data = with_id3_footer(path.read_bytes())
    assert decode_audio(io.BytesIO(data), max_seconds=600).duration == pytest.approx(7.1, abs=0.1)
    with pytest.raises(DecoderFailed, match="ends early"):  # at 64 kbit/s, 30 kB is 3.75 s
        decode_audio(io.BytesIO(data[:-30_000]), max_seconds=600)


def test_a_wav_whose_samples_follow_a_large_chunk_is_read_directly(ffmpeg: str, tmp_path: Path) -> None:
    """The RIFF chunks are walked by seeking: a 100 kB LIST chunk (a long comment) before the samples."""
    comment = ["-metadata", "comment=" + "x" * 100_000]
    path = encode(ffmpeg, tmp_path / "commented.wav", "-i", str(SPEECH.path), *comment)
    with path.open("rb") as file:
        assert is_plain_wav(file, max_bytes=path.stat().st_size)
        audio = decode_audio(file, max_seconds=600)
    assert audio.codec == "pcm_s16le"
    assert np.array_equal(audio.samples, read_wav(SPEECH.path))


CUT_ENDS = {  # encoder options, and how many bytes the end loses: part of the last packet
    "aac": (["-c:a", "aac"], 50),
    "flac": ([], 100),
    "m4a": (["-c:a", "aac", "-movflags", "+faststart"], 100),  # samples last, as phones write it
}


@pytest.mark.parametrize("extension", list(CUT_ENDS))
async def test_a_file_missing_its_last_bytes_is_transcribed(
    client: AsyncTestClient[Litestar], ffmpeg: str, tmp_path: Path, extension: str
) -> None:
    """The last packet, cut short, does not decode: ffmpeg leaves it out, and so does the gateway."""
    options, cut = CUT_ENDS[extension]
    path = encode(ffmpeg, tmp_path / f"speech.{extension}", "-i", str(SPEECH.path), *options)
    data = path.read_bytes()[:-cut]
    assert decode_audio(io.BytesIO(data), max_seconds=600).duration == pytest.approx(7.1, abs=0.15)
    response = await client.post(REFERENCE, files={"file": (path.name, data)})
    assert response.status_code == 200, response.text
    assert wer(SPEECH.reference, response.json()["text"]) < 0.1


def test_a_cut_that_costs_more_than_a_tenth_is_still_refused(ffmpeg: str, tmp_path: Path) -> None:
    """What decodes before the failing last packet is measured against the stated length: 40 % missing."""
    path = encode(ffmpeg, tmp_path / "speech.flac", "-i", str(SPEECH.path))
    data = path.read_bytes()
    with pytest.raises(DecoderFailed, match="ends early"):
        decode_audio(io.BytesIO(data[: len(data) * 6 // 10]), max_seconds=600)


@pytest.mark.parametrize("muxer", ["webm", "matroska"])
def test_a_cut_webm_is_refused_and_one_streamed_as_recorded_is_not(ffmpeg: str, tmp_path: Path, muxer: str) -> None:
    """A WebM or MKV states its length (a track tag, or the segment's); half of one was transcribed as whole.
    A browser's MediaRecorder streams its WebM as it records and states no length: nothing to compare."""
    path = encode(ffmpeg, tmp_path / "speech.webm", "-i", str(SPEECH.path), "-c:a", "libopus", "-f", muxer)
    data = path.read_bytes()
    assert decode_audio(io.BytesIO(data), max_seconds=600).duration == pytest.approx(7.1, abs=0.15)
    with pytest.raises(DecoderFailed, match="ends early"):
        decode_audio(io.BytesIO(data[: len(data) // 2]), max_seconds=600)
    streamed = encode(ffmpeg, tmp_path / "live.webm", "-i", str(path), "-c", "copy", "-f", "webm", "-live", "1")
    data = streamed.read_bytes()
    assert decode_audio(io.BytesIO(data[: len(data) // 2]), max_seconds=600).duration < 5


def test_the_sound_of_a_video_is_measured_against_its_own_length(ffmpeg: str, tmp_path: Path) -> None:
    """A video's sound may stop before its picture: only a length stated for the sound itself counts.
    Copied through a pipe, the WebM states its whole 12 s and no track's own."""
    video = ["-f", "lavfi", "-i", "color=size=32x32:duration=12:rate=5", "-i", str(SPEECH.path)]
    path = encode(ffmpeg, tmp_path / "clip.webm", *video, "-c:a", "libopus", "-c:v", "libvpx")
    copy = [ffmpeg, "-loglevel", "error", "-i", str(path), "-c", "copy", "-f", "webm", "pipe:1"]
    piped = subprocess.run(copy, check=True, capture_output=True).stdout
    for data in (path.read_bytes(), piped):
        assert decode_audio(io.BytesIO(data), max_seconds=600).duration == pytest.approx(7.1, abs=0.15)


@pytest.mark.parametrize("where", [0.5, 0.97])
def test_damage_inside_a_file_is_refused(ffmpeg: str, tmp_path: Path, where: float) -> None:
    """Only the end is forgiven: a packet that fails with audio decoding after it is damage, even near the end."""
    path = encode(ffmpeg, tmp_path / "speech.aac", "-i", str(SPEECH.path), "-c:a", "aac")
    data = bytearray(path.read_bytes())
    start = int(len(data) * where)
    data[start : start + 200] = bytes(200)
    with pytest.raises(DecoderFailed, match="could not be decoded"):
        decode_audio(io.BytesIO(bytes(data)), max_seconds=600)


@pytest.mark.parametrize("format_tag", [0x1234, 0x0000])
def test_a_wav_of_a_codec_no_decoder_knows_is_unsupported_not_damaged(format_tag: int) -> None:
    """A WAV whose format tag names no codec libav decodes is ASR-6041 (415), not a damaged file (422)."""
    samples = bytes(32000)
    fmt = struct.pack("<HHIIHH", format_tag, 1, 16000, 32000, 2, 16)
    data = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(samples)) + b"WAVE"
    data += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    with pytest.raises(UnsupportedAudio, match="in a codec this server cannot decode"):
        decode_audio(io.BytesIO(data), name="odd.wav", max_seconds=600)
