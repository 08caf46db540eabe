"""Decode any audio libav knows to 16 kHz mono PCM, in-process (PyAV).

PyAV was measured against pydub (which the design named) and the ffmpeg CLI; the
figures are in ``docs/decoding.md``. A WAV that is already 16 kHz mono 16-bit (what
most ASR clients send) is read directly: opening it with libav costs more than the
read. Blocking: callers run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import av
import av.error
import numpy as np

from compat.errors import AudioTooLong, DecoderFailed, EmptyAudio, UnsupportedAudio

SAMPLE_RATE = 16_000
# Up to 30 s of audio, reading a plain WAV, planning and encoding a piece take well under a
# millisecond or about one: they stay on the event loop, where a thread hop would cost as much
# (measured; docs/benchmarks.md). Longer audio goes to a worker thread.
ON_LOOP_SAMPLES = 30 * SAMPLE_RATE
_SIGNATURE_BYTES = 16
OUTPUT_FRAME_SAMPLES = 10 * SAMPLE_RATE
# Containers whose header states the exact length, so a shorter decode means a cut file.
_MATROSKA = "matroska,webm"  # a recording streamed as it was made (a browser's MediaRecorder) states no length
_EXACT_LENGTH_FORMATS = ("wav", "flac", "mov,mp4,m4a,3gp,3g2,mj2", "aiff", _MATROSKA)
MIN_SECONDS = 0.1  # shorter audio holds no word; OpenAI refuses it too (audio_too_short)
FORMATS = "WAV, MP3, M4A, FLAC, OGG, Opus, AAC, WebM"  # named in the refusals of what does not decode
_WAV_MAX_CHUNKS = 64  # a real WAV has a handful before its samples; bounds the walk through a crafted one
_ID3_MAX_TAGS = 4  # some files carry two, one from each tagger; bounds the walk through a crafted one
_MP3_SYNC_WINDOW = 4096  # padding some taggers leave between the ID3 tag and the first frame
# A packet that fails to decode this close to the end (or within the last 1 %) is a cut upload's last one.
# 16 KiB: a few frames even of 24-bit stereo FLAC.
_TAIL_BYTES = 16 * 1024


@dataclass(frozen=True)
class DecodedAudio:
    """PCM samples (int16, mono, 16 kHz; read-only when read straight from a WAV) and what the file was."""

    samples: np.ndarray
    container: str
    codec: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE


def looks_like_audio(head: bytes) -> bool:
    """Whether the first bytes carry the signature of an audio or media container."""
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return True
    if head[:3] == b"ID3" or head[:4] in (b"fLaC", b"OggS", b"FORM", b"caff", b"#!AM", b"\x1a\x45\xdf\xa3"):
        return True
    if head[4:8] == b"ftyp":
        return True
    # MPEG audio or ADTS frame sync: eleven (MPEG) or twelve (ADTS) set bits.
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


@dataclass(frozen=True)
class _WavLayout:
    """What a WAV header says: the PCM format and where the samples are."""

    pcm16_mono_16k: bool
    data_offset: int
    data_length: int


def _wav_layout(source: IO[bytes]) -> _WavLayout | None:
    """The layout of a RIFF/WAVE file; None if it is not one or its data chunk is not there.

    The chunks are walked by seeking: a large LIST or junk chunk may come before the samples.
    """
    source.seek(0)
    riff = source.read(12)
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        return None
    position = 12
    plain = False
    for _ in range(_WAV_MAX_CHUNKS):
        source.seek(position)
        header = source.read(8)
        if len(header) < 8:
            return None
        chunk, length = header[:4], int.from_bytes(header[4:8], "little")
        if chunk == b"data":
            return _WavLayout(plain, position + 8, length)
        if chunk == b"fmt ":
            plain = _is_pcm16_mono_16k(source.read(min(length, 26)))
        position += 8 + length + (length & 1)
    return None


def _is_pcm16_mono_16k(fmt: bytes) -> bool:
    """Whether a WAV's ``fmt `` chunk describes 16 kHz mono 16-bit PCM."""
    if len(fmt) < 16:
        return False
    audio_format = int.from_bytes(fmt[0:2], "little")
    if audio_format == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first word
        audio_format = int.from_bytes(fmt[24:26], "little")
    channels = int.from_bytes(fmt[2:4], "little")
    rate = int.from_bytes(fmt[4:8], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    return (audio_format, channels, rate, bits) == (1, 1, SAMPLE_RATE, 16)


def _wav_missing_bytes(layout: _WavLayout | None, size: int) -> int:
    """How many bytes a WAV's ``data`` chunk announces beyond the end of the file (0 if none, or not a WAV)."""
    if layout is None or layout.data_length in (0, 0xFFFFFFFF):  # streamed WAVs leave the length open
        return 0
    return max(0, layout.data_offset + layout.data_length - size)


def _read_pcm16(source: IO[bytes], layout: _WavLayout, size: int, max_seconds: float) -> np.ndarray:
    """The samples of a WAV that is already 16 kHz mono 16-bit: no decoder needed (the common case for ASR)."""
    length = size - layout.data_offset
    if layout.data_length not in (0, 0xFFFFFFFF):
        length = min(length, layout.data_length)
    length -= length % 2
    if length / 2 > (max_seconds + 1) * SAMPLE_RATE:
        raise AudioTooLong(
            f"The audio is {length / 2 / SAMPLE_RATE:.0f} s long; this mode takes at most {max_seconds:.0f} s.",
            seconds=length / 2 / SAMPLE_RATE,
        )
    source.seek(layout.data_offset)
    # A view of the bytes read, so read-only: the pipeline never writes to samples (PieceRequest says so).
    return np.frombuffer(source.read(length), dtype="<i2")


@dataclass(frozen=True)
class _MpegFrame:
    """What an MPEG audio frame header says that locates and reads a Xing/Info or VBRI tag."""

    mpeg1: bool
    mono: bool
    samples: int  # per frame
    rate: int


_MPEG_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}


def _mpeg_frame(header: bytes) -> _MpegFrame | None:
    """The MPEG audio frame header in these 4 bytes; None if they are not one."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3  # version 1 and layer 0 are reserved
    bitrate, rate = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer == 0 or bitrate == 15 or rate == 3:
        return None
    samples = 384 if layer == 3 else 1152 if layer == 2 or version == 3 else 576  # layer bits: 3 is Layer I
    return _MpegFrame(version == 3, header[3] >> 6 == 3, samples, _MPEG_RATES[version][rate])


def _after_id3(source: IO[bytes]) -> int:
    """Where the audio starts: past any ID3v2 tags, however large (cover art), from the sizes in their headers."""
    position = 0
    for _ in range(_ID3_MAX_TAGS):
        source.seek(position)
        header = source.read(10)
        if len(header) < 10 or header[:3] != b"ID3" or any(byte & 0x80 for byte in header[6:10]):
            break
        size = 0
        for byte in header[6:10]:  # "syncsafe": 7 bits a byte
            size = size << 7 | byte
        position += 10 + size + (10 if header[5] & 0x10 else 0)  # flag 0x10: a 10-byte footer follows the tag
    return position


def _frame_count(frame: bytes, header: _MpegFrame) -> int | None:
    """The frame count held by a Xing/Info tag (after the header and side information) or a VBRI tag (at 36)."""
    if len(frame) < 54:  # a frame that holds either tag is longer
        return None
    xing = 4 + ((17 if header.mono else 32) if header.mpeg1 else (9 if header.mono else 17))
    if frame[xing : xing + 4] in (b"Xing", b"Info"):
        has_count = frame[xing + 7] & 1  # the flags' lowest bit
        return int.from_bytes(frame[xing + 8 : xing + 12], "big") if has_count else None
    if frame[36:40] == b"VBRI":  # version, delay, quality, bytes, then frames
        return int.from_bytes(frame[50:54], "big")
    return None


def _mp3_stated_seconds(source: IO[bytes]) -> float | None:
    """The length an MP3's Xing/Info or VBRI tag states (LAME and ffmpeg write one); None without one.

    The tag is looked for only where it lives, inside the first audio frame: an ID3 title or artist
    holding "Xing" or "Info" is not one.
    """
    start = _after_id3(source)
    source.seek(start)
    window = source.read(_MP3_SYNC_WINDOW + 64)
    sync = window.find(b"\xff")
    while 0 <= sync < _MP3_SYNC_WINDOW:
        header = _mpeg_frame(window[sync : sync + 4])
        if header is not None:
            count = _frame_count(window[sync : sync + 64], header)
            return count * header.samples / header.rate if count else None
        sync = window.find(b"\xff", sync + 1)
    return None


def is_plain_wav(source: IO[bytes], *, max_bytes: int) -> bool:
    """Whether ``source`` is a 16 kHz mono 16-bit WAV of at most ``max_bytes``: read as it is, no decoder.

    Leaves ``source`` at its start; reads nothing from a larger one (it may be on disk).
    """
    size = source.seek(0, 2)
    source.seek(0)
    if size > max_bytes:
        return False
    layout = _wav_layout(source)
    source.seek(0)
    return layout is not None and layout.pcm16_mono_16k


def decode_audio(source: IO[bytes], *, max_seconds: float, name: str = "file") -> DecodedAudio:
    """Decode ``source`` to 16 kHz mono int16.

    Args:
        source: a seekable binary file, positioned at its start.
        max_seconds: longer audio is refused as soon as it is known to be longer.
        name: the file's name, for messages.

    Raises:
        EmptyAudio: zero bytes, or no samples.
        UnsupportedAudio: not a format libav recognises, or no audio stream.
        DecoderFailed: it looked like audio but could not be decoded to its end.
        AudioTooLong: longer than ``max_seconds``.
    """
    head = source.read(_SIGNATURE_BYTES)
    size = source.seek(0, 2)
    if not head:
        raise EmptyAudio(f"'{name}' is empty (0 bytes).")
    layout = _wav_layout(source)
    missing = _wav_missing_bytes(layout, size)
    if missing > max(SAMPLE_RATE, size // 10):  # more than a tenth (and 0.5 s of 16-bit audio) is gone
        raise DecoderFailed(
            f"'{name}' ends early: its header announces {missing} more bytes of audio than it holds "
            "(a truncated upload?)."
        )
    if layout is not None and layout.pcm16_mono_16k:
        samples = _long_enough(_read_pcm16(source, layout, size, max_seconds), name)
        return DecodedAudio(samples=samples, container="wav", codec="pcm_s16le")
    mp3_seconds = _mp3_stated_seconds(source)  # read before libav takes the file over
    source.seek(0)
    signature = looks_like_audio(head)
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        if signature:
            raise DecoderFailed(f"'{name}' looks like audio but could not be opened: {_reason(error)}.") from None
        raise UnsupportedAudio(f"'{name}' is not an audio format this server can decode ({FORMATS}, ...).") from None
    with container:
        stream = next(iter(container.streams.audio), None)
        if stream is None:
            raise UnsupportedAudio(f"'{name}' has no audio stream.")
        container_name = container.format.name
        declared, exact = _stated_seconds(container, stream), container_name in _EXACT_LENGTH_FORMATS
        if container_name == "mp3":  # without a Xing/Info or VBRI tag, libav's figure is a guess
            declared, exact = mp3_seconds, mp3_seconds is not None
        # Only a stated length is refused unread: libav guesses an ADTS or plain MP3 file's from its first
        # frames' bitrate, and a quiet opening makes that guess ten times too long. Decoding enforces the rest.
        if exact and declared is not None and declared > max_seconds + 1:
            raise AudioTooLong(
                f"The audio is {declared:.0f} s long; this mode takes at most {max_seconds:.0f} s.", seconds=declared
            )
        samples = _decode_stream(container, stream, size=size, max_seconds=max_seconds, name=name)
        codec = stream.codec_context.name
    samples = _long_enough(samples, name)
    decoded = len(samples) / SAMPLE_RATE
    if exact and declared is not None and declared - decoded > max(1.0, 0.1 * declared):
        raise DecoderFailed(
            f"'{name}' ends early: its header announces {declared:.1f} s but only {decoded:.1f} s could be "
            "decoded (a truncated upload?)."
        )
    return DecodedAudio(samples=samples, container=container_name, codec=codec)


def _stated_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The audio's length as the file states it: its audio stream's own, else the container's.

    A video's container lasts as long as its longest stream, often longer than the sound.
    """
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.format.name == _MATROSKA:  # a track's length is a tag, where the muxer wrote one
        tagged = _clock_seconds(stream.metadata.get("DURATION", ""))
        if tagged is not None or container.streams.video:
            return tagged
    return container.duration / 1_000_000 if container.duration else None


def _clock_seconds(clock: str) -> float | None:
    """``HH:MM:SS.nnnnnnnnn`` (Matroska's DURATION tag) in seconds, or None when it is not one."""
    hours, _, rest = clock.partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _decode_stream(
    container: av.container.InputContainer, stream: av.AudioStream, *, size: int, max_seconds: float, name: str
) -> np.ndarray:
    resampler = _resampler()
    limit = int((max_seconds + 1) * SAMPLE_RATE)
    parts: list[np.ndarray] = []
    total = 0
    shape: tuple[str, str, int] | None = None

    def keep(frames: list[av.AudioFrame]) -> None:
        nonlocal total
        for out in frames:
            parts.append(out.to_ndarray().reshape(-1))
            total += len(parts[-1])

    try:
        for frame in _frames(container, stream, size):
            frame_shape = (frame.format.name, frame.layout.name, frame.sample_rate)
            if shape is not None and frame_shape != shape:
                # An ADTS or MP3 stream may change its rate or channels mid-way (two files joined with
                # cat): a resampler takes one input shape, so the old one is drained and a new one made.
                keep(resampler.resample(None))
                resampler = _resampler()
            shape = frame_shape
            keep(resampler.resample(frame))
            if total > limit:
                raise AudioTooLong(
                    f"The audio is longer than this mode's limit of {max_seconds:.0f} s.", seconds=total / SAMPLE_RATE
                )
        keep(resampler.resample(None))
    except av.error.DecoderNotFoundError:  # a codec libav has no decoder for (a WAV's format tag 0x1234)
        message = f"'{name}' holds its audio in a codec this server cannot decode ({FORMATS}, ...)."
        raise UnsupportedAudio(message) from None
    except (av.error.FFmpegError, ValueError) as error:  # ValueError: PyAV's own checks on a damaged frame
        raise DecoderFailed(f"'{name}' could not be decoded: {_reason(error)}.") from None
    if not parts:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(parts)


def _frames(container: av.container.InputContainer, stream: av.AudioStream, size: int) -> Iterator[av.AudioFrame]:
    """The stream's frames, less those of packets that fail to decode at the end of a cut upload.

    ffmpeg decodes such a file, leaving its last, partial packets out; so does this. A failing packet is
    left out only near the end of the file, and only if no audio decodes after it: else the damage is
    mid-file. What the cut cost is then judged against the length the file states.
    """
    damaged: av.error.InvalidDataError | None = None
    for packet in container.demux(stream):
        try:
            frames = stream.decode(packet)
        except av.error.InvalidDataError as error:
            if not _near_end(packet, size):
                raise
            damaged = error
            continue
        if damaged is not None and frames and packet.size:  # size 0: the flush, which may return held frames
            raise damaged
        yield from frames


def _near_end(packet: av.Packet[av.AudioStream], size: int) -> bool:
    """Whether ``packet`` lies in the last ``_TAIL_BYTES`` (or 1 %) of a file of ``size`` bytes, or is the flush."""
    if not packet.size:
        return True
    return packet.pos is not None and packet.pos >= size - max(_TAIL_BYTES, size // 100)


def _resampler() -> av.AudioResampler:
    # Large output frames: per-frame Python work, not decoding, was the cost (measured: 1.5x the CLI -> 0.9x).
    return av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE, frame_size=OUTPUT_FRAME_SAMPLES)


def _long_enough(samples: np.ndarray, name: str) -> np.ndarray:
    """``samples``, if they are at least ``MIN_SECONDS`` long.

    Raises:
        EmptyAudio: no samples, or fewer than that (OpenAI refuses audio under 0.1 s too).
    """
    if len(samples) == 0:
        raise EmptyAudio(f"'{name}' contains no audio samples.")
    if len(samples) < MIN_SECONDS * SAMPLE_RATE:
        raise EmptyAudio(
            f"'{name}' holds {1000 * len(samples) / SAMPLE_RATE:.0f} ms of audio; at least {MIN_SECONDS:g} s is needed."
        )
    return samples


def _reason(error: Exception) -> str:
    reason = getattr(error, "strerror", None) or str(error)
    return str(reason).rstrip(".")
