"""Every bad input gets its code and a clear message, in its route family's shape, and the server keeps serving."""

from __future__ import annotations

import logging
import subprocess
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.http_errors import CLIENT_GONE_STATUS
from gateway.multipart import TEXT_LIMIT
from tests.asgi import post_form
from tests.conftest import make_settings
from tests.corpus import build_long_input, clip, write_wav
from tests.formdata import multipart
from tests.wer import wer

REFERENCE = "/v1/asr/transcribe/audio"
OPENAI = "/v1/audio/transcriptions"
GOOD = clip("goforward").path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    mp3 = folder / "speech.mp3"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(clip("ss_0870").path), str(mp3)], check=True)
    data = mp3.read_bytes()
    files = {
        "empty": b"",
        "header_only": b"",  # written below: a valid WAV holding no samples
        "text_as_mp3": b"This is a text file, not audio.\n" * 20,
        "truncated_mp3": data[: len(data) // 2],
    }
    out = {}
    for name, content in files.items():
        path = folder / (name + (".wav" if name in ("empty", "header_only") else ".mp3"))
        path.write_bytes(content)
        out[name] = path
    write_wav(out["header_only"], np.zeros(0, dtype=np.int16))
    out["truncated_wav"] = folder / "truncated.wav"
    out["truncated_wav"].write_bytes(clip("ss_0870").path.read_bytes()[:20_000])
    out.update(truncated_behind_large_tags(ffmpeg, folder))
    return out


def truncated_behind_large_tags(ffmpeg: str, folder: Path) -> dict[str, Path]:
    """Files cut short whose length is stated past their first 64 kB: behind cover art, or a large LIST chunk."""
    speech, run = str(clip("ss_0870").path), [ffmpeg, "-loglevel", "error", "-y"]
    cover = folder / "cover.png"
    noise = "nullsrc=s=460x460,geq=random(1)*255:random(2)*255:random(3)*255"  # about 600 kB, as a photo
    subprocess.run([*run, "-f", "lavfi", "-i", noise, "-frames:v", "1", str(cover)], check=True)
    art = ["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-b:a", "64k"]
    mp3 = folder / "covered.mp3"
    subprocess.run([*run, "-i", speech, *art, str(mp3)], check=True)
    wav = folder / "commented.wav"
    subprocess.run([*run, "-i", speech, "-metadata", "comment=" + "x" * 100_000, str(wav)], check=True)
    mp3.write_bytes(mp3.read_bytes()[:-30_000])  # at 64 kbit/s, 3.75 of 7.1 s
    wav.write_bytes(wav.read_bytes()[: wav.stat().st_size * 6 // 10])
    return {"truncated_mp3_cover_art": mp3, "truncated_wav_large_chunk": wav}


def reference_error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "code", "request_id"}
    assert body["code"] == code
    assert isinstance(body["error"], str)
    assert len(body["error"]) > 10
    assert response.headers["x-request-id"] == body["request_id"]  # type: ignore[attr-defined]
    return dict(body)


def openai_error(response: object, status: int, code: str, param: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["error"]["type"] == "invalid_request_error"
    if param is not None:
        assert body["error"]["param"] == param
    return dict(body["error"])


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("empty", 400, "ASR-6040"),
        ("header_only", 400, "ASR-6040"),
        ("text_as_mp3", 415, "ASR-6041"),
        ("truncated_mp3", 422, "ASR-6044"),
        ("truncated_wav", 422, "ASR-6044"),
        ("truncated_mp3_cover_art", 422, "ASR-6044"),
        ("truncated_wav_large_chunk", 422, "ASR-6044"),
    ],
)
async def test_bad_audio_on_both_routes(
    client: AsyncTestClient[Litestar], bad_files: dict[str, Path], name: str, status: int, code: str
) -> None:
    path = bad_files[name]
    upload = {"file": (path.name, path.read_bytes(), "application/octet-stream")}
    reference_error(await client.post(REFERENCE, files=upload, headers={"X-Request-ID": f"bad-{name}"}), status, code)
    openai_error(await client.post(OPENAI, files=upload, data={"model": "whisper-1"}), status, code, param="file")
    await assert_still_serving(client)


async def test_missing_file(client: AsyncTestClient[Litestar]) -> None:
    body = reference_error(await client.post(REFERENCE, data={"process_type": "full"}), 400, "ASR-6045")
    assert "'file' is required" in str(body["error"])
    openai_error(await client.post(OPENAI, data={"model": "whisper-1"}), 400, "ASR-6045", param="file")
    # a text field named file is not an upload: curl's -F file=meeting.mp3, the @ forgotten, is named
    for path in (REFERENCE, OPENAI):
        forgot_at = {"file": (None, b"meeting.mp3")}
        said = (await client.post(path, files=forgot_at, data={"model": "whisper-1"})).json()
        assert "-F file=@meeting.mp3" in str(said.get("error")), said
    openai_error(await client.post(OPENAI, data={"model": "whisper-1", "file": "x.wav"}), 400, "ASR-6045", "file")
    # a big form-urlencoded body is refused unread (it can carry no file); a huge request_id is cut
    crowd = {"model": "whisper-1", "prompt": "x" * 200_000}
    error = openai_error(await client.post(OPENAI, data=crowd), 400, "ASR-6045", "file")
    assert "form-urlencoded body carries no file" in str(error["message"])
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    huge_id = await client.post(REFERENCE, files=upload, data={"request_id": "r" * 500_000})
    assert huge_id.json()["request_id"] == "r" * 200
    # a JSON body is not a multipart form
    openai_error(await client.post(OPENAI, json={"model": "whisper-1"}), 400, "ASR-6045", param="file")


async def test_unknown_choices(client: AsyncTestClient[Litestar]) -> None:
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    body = reference_error(await client.post(REFERENCE, files=upload, data={"process_type": "fast"}), 400, "ASR-6045")
    assert "full" in str(body["error"])
    assert "chunked" in str(body["error"])
    error = openai_error(
        await client.post(OPENAI, files=upload, data={"response_format": "xml"}), 400, "ASR-6045", "response_format"
    )
    assert "verbose_json" in str(error["message"])
    openai_error(await client.post(OPENAI, files=upload, data={"temperature": "hot"}), 400, "ASR-6045", "temperature")
    openai_error(await client.post(OPENAI, files=upload, data={"language": "klingon"}), 400, "ASR-6045", "language")
    openai_error(
        await client.post(OPENAI, files=upload, data={"timestamp_granularities[]": "word"}),
        400,
        "ASR-6045",
        "timestamp_granularities[]",
    )
    for streamed in ("srt", "vtt", "verbose_json"):  # as OpenAI and vLLM refuse them: a stream is text events
        asked = {"stream": "true", "response_format": streamed}
        error = openai_error(await client.post(OPENAI, files=upload, data=asked), 400, "ASR-6045", "stream")
        assert streamed in str(error["message"])
    for chunking in ({"chunking_strategy": "fast"}, {"chunking_strategy[type]": "semantic"}):
        openai_error(await client.post(OPENAI, files=upload, data=chunking), 400, "ASR-6045", "chunking_strategy")
    both = {"chunking_strategy": "auto", "chunking_strategy[type]": "server_vad"}
    error = openai_error(await client.post(OPENAI, files=upload, data=both), 400, "ASR-6045", "chunking_strategy")
    assert "send one" in str(error["message"])
    await assert_still_serving(client)


async def test_unknown_model_is_404_in_openai_shape(client: AsyncTestClient[Litestar]) -> None:
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    response = await client.post(OPENAI, files=upload, data={"model": "gpt-5-ears"})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "model"
    assert response.json()["error"]["code"] == "ASR-6048"


async def test_language_the_model_cannot_do(client: AsyncTestClient[Litestar]) -> None:
    """tiny.en is English-only: French gets a clear 400, not wrong text."""
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    error = openai_error(await client.post(OPENAI, files=upload, data={"language": "fr"}), 400, "ASR-6045", "language")
    assert "cannot transcribe language 'fr'" in str(error["message"])
    reference_error(await client.post(REFERENCE, files=upload, data={"language": "French"}), 400, "ASR-6045")


@pytest.fixture(scope="module")
async def strict_client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An app with small limits: 5 s of audio in full mode, 8 s chunked, 0.3 MB uploads."""
    settings = make_settings(max_full_seconds=5.0, max_chunked_seconds=8.0, max_upload_mb=0.3)
    async with AsyncTestClient(app=create_app(settings), timeout=60) as client:
        yield client


async def test_over_long_audio(strict_client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture) -> None:
    longer = clip("ss_0870").path  # 7.1 s
    upload = {"file": (longer.name, longer.read_bytes(), "audio/wav")}
    with caplog.at_level(logging.INFO, logger="gateway.pipeline.core"):
        body = reference_error(await strict_client.post(REFERENCE, files=upload), 400, "ASR-6042")
    failed = [r for r in caplog.records if getattr(r, "error_code", "") == "ASR-6042"]
    assert [round(r.audio_seconds, 1) for r in failed] == [7.1], "the failure's log says how long the audio was"
    assert "5 s" in str(body["error"])
    assert "Chunked mode (process_type=chunked) takes up to 8 s" in str(body["error"]), "the way out is named"
    # the same file fits chunked mode's limit
    response = await strict_client.post(REFERENCE, files=upload, data={"process_type": "chunked"})
    assert response.status_code == 200, response.text
    error = openai_error(await strict_client.post(OPENAI, files=upload), 400, "ASR-6042")
    assert "Chunked mode (chunking_strategy=auto) takes up to 8 s" in str(error["message"])
    response = await strict_client.post(OPENAI, files=upload, data={"chunking_strategy": "auto"})
    assert response.status_code == 200, response.text


async def test_over_size_upload(strict_client: AsyncTestClient[Litestar]) -> None:
    big = clip("ss_0870").path.read_bytes() + clip("ss_0920").path.read_bytes()  # 421 kB > 0.3 MB
    upload = {"file": ("big.wav", big, "audio/wav")}
    body = reference_error(await strict_client.post(REFERENCE, files=upload), 413, "ASR-6046")
    assert "0.3 MB" in str(body["error"])
    openai_error(await strict_client.post(OPENAI, files=upload), 413, "ASR-6046", "file")
    await assert_still_serving(strict_client)


async def assert_still_serving(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(REFERENCE, files={"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")})
    assert response.status_code == 200, response.text
    assert "forward" in response.json()["text"].lower()


async def test_request_ids(client: AsyncTestClient[Litestar]) -> None:
    """The form's request_id, else X-Request-ID, else a new UUID; echoed even by errors, safe in a header."""
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    mine = await client.post(REFERENCE, files=upload, data={"request_id": "form-1"}, headers={"X-Request-ID": "hdr"})
    assert mine.json()["request_id"] == mine.headers["x-request-id"] == "form-1"
    from_header = await client.post(REFERENCE, files=upload, headers={"X-Request-ID": "hdr-2"})
    assert from_header.json()["request_id"] == "hdr-2"
    fresh = await client.post(REFERENCE, files=upload)
    assert str(uuid.UUID(fresh.json()["request_id"])) == fresh.headers["x-request-id"]
    # Any text: non-Latin-1 is echoed as sent in the body and percent-encoded in the header (it was a 500).
    vietnamese = await client.post(REFERENCE, files=upload, data={"request_id": "tầng-1"})
    assert vietnamese.status_code == 200, vietnamese.text
    assert vietnamese.json()["request_id"] == "tầng-1"
    assert urllib.parse.unquote(vietnamese.headers["x-request-id"]) == "tầng-1"
    # The same id sent as a header (UTF-8 bytes, as curl and browsers send it) is the same id.
    as_header = await client.post(REFERENCE, files=upload, headers={"X-Request-ID": "tầng-2".encode()})
    assert as_header.json()["request_id"] == "tầng-2"
    assert urllib.parse.unquote(as_header.headers["x-request-id"]) == "tầng-2"
    latin = await client.post(REFERENCE, files=upload, headers={"X-Request-ID": "caf\xe9".encode("latin-1")})
    assert latin.json()["request_id"] == "café"  # not UTF-8: read as Latin-1, as before
    # A CR/LF cannot add a header; an id is cut to 200 characters.
    injected = await client.post(REFERENCE, files=upload, data={"request_id": "a\r\nSet-Cookie: x=1"})
    assert "set-cookie" not in injected.headers
    assert injected.json()["request_id"] == injected.headers["x-request-id"] == "aSet-Cookie: x=1"
    long = await client.post(REFERENCE, files=upload, data={"request_id": "x" * 1000})
    assert long.json()["request_id"] == "x" * 200
    # Errors raised while the form is checked echo the form's id, not a new one.
    body = reference_error(await client.post(REFERENCE, data={"request_id": "no-file"}), 400, "ASR-6045")
    assert body["request_id"] == "no-file"
    bad = {"request_id": "bad-type", "process_type": "fast"}
    body = reference_error(await client.post(REFERENCE, files=upload, data=bad), 400, "ASR-6045")
    assert body["request_id"] == "bad-type"


async def test_a_form_over_the_parsers_limits(client: AsyncTestClient[Litestar]) -> None:
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    crowd = {f"field{i}": "x" for i in range(1200)}
    body = reference_error(await client.post(REFERENCE, files=upload, data=crowd), 400, "ASR-6045")
    assert "at most 1000 parts" in str(body["error"])
    error = openai_error(await client.post(OPENAI, files=upload, data=crowd), 400, "ASR-6045")
    assert "at most 1000 parts" in str(error["message"])
    await assert_still_serving(client)


async def test_unrouted_requests_in_their_familys_shape(client: AsyncTestClient[Litestar]) -> None:
    """A wrong method or path gets the catalogue's error (ASR-6049) in the shape of the family it aimed at."""
    wrong_method = await client.get(OPENAI)
    error = openai_error(wrong_method, 405, "ASR-6049")
    assert error["message"] == "GET is not allowed on /v1/audio/transcriptions; use POST."
    assert "POST" in wrong_method.headers["allow"]
    body = reference_error(await client.get(REFERENCE), 405, "ASR-6049")
    assert "use POST" in str(body["error"])
    error = openai_error(await client.post("/v1/audio/transcription"), 404, "ASR-6049")
    assert "Nothing is served at /v1/audio/transcription" in str(error["message"])
    reference_error(await client.post("/v1/asr/transcribe"), 404, "ASR-6049")


def aac(ffmpeg: str, folder: Path, name: str, *inputs: str) -> Path:
    """``inputs`` (ffmpeg input arguments) joined end to end, encoded as ADTS AAC, 44.1 kHz stereo."""
    arguments: list[str] = []
    for source in inputs:
        arguments += source.split(" ")
    joined = "".join(f"[{i}:a]aresample=44100,aformat=channel_layouts=stereo[a{i}];" for i in range(len(inputs)))
    joined += "".join(f"[a{i}]" for i in range(len(inputs))) + f"concat=n={len(inputs)}:v=0:a=1"
    out = folder / name
    command = [ffmpeg, "-loglevel", "error", "-y", *arguments, "-filter_complex", joined, "-c:a", "aac", str(out)]
    subprocess.run(command, check=True)
    return out


async def test_an_aac_file_opening_quietly_is_not_taken_for_a_long_one(
    strict_client: AsyncTestClient[Litestar], ffmpeg: str, tmp_path: Path
) -> None:
    """ADTS states no length: libav guesses one from the first frames' bitrate, which a quiet opening makes tiny.

    4 s of silence then 2.8 s of speech is guessed at about 85 s; chunked mode takes 8 s here, and reads it all.
    """
    quiet = aac(ffmpeg, tmp_path, "quiet.aac", "-f lavfi -t 4 -i anullsrc=r=44100:cl=stereo", f"-i {GOOD}")
    upload = {"file": (quiet.name, quiet.read_bytes(), "audio/aac")}
    response = await strict_client.post(REFERENCE, files=upload, data={"process_type": "chunked"})
    assert response.status_code == 200, response.text
    assert "forward" in response.json()["text"].lower()


async def test_a_video_whose_picture_outlasts_its_sound_is_no_truncated_upload(
    strict_client: AsyncTestClient[Litestar], ffmpeg: str, tmp_path: Path
) -> None:
    """An MP4 states its longest stream's length (9 s of picture here, over full mode's 5 + 1 s); the sound
    (2.8 s) is what is measured, against the limit and against what decodes."""
    video = tmp_path / "clip.mp4"
    picture = ["-f", "lavfi", "-t", "9", "-i", "testsrc=size=64x48:rate=10"]
    codecs = ["-c:v", "mpeg4", "-c:a", "aac"]
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", *picture, "-i", str(GOOD), *codecs, str(video)], check=True)  # noqa: ASYNC221
    upload = {"file": (video.name, video.read_bytes(), "video/mp4")}
    for route in (REFERENCE, OPENAI):
        response = await strict_client.post(route, files=upload)
        assert response.status_code == 200, response.text
        assert "forward" in response.json()["text"].lower()


def aac_changing_midway(ffmpeg: str, folder: Path) -> bytes:
    """GOOD as 44.1 kHz stereo ADTS, then again as 22.05 kHz mono, in one byte string."""
    parts = []
    for rate, channels in (("44100", "2"), ("22050", "1")):
        part = folder / f"{rate}.aac"
        command = [ffmpeg, "-loglevel", "error", "-y", "-i", str(GOOD), "-ar", rate, "-ac", channels, str(part)]
        subprocess.run(command, check=True)
        parts.append(part.read_bytes())
    return b"".join(parts)


async def test_a_stream_whose_rate_and_channels_change_midway_is_decoded(
    client: AsyncTestClient[Litestar], ffmpeg: str, tmp_path: Path
) -> None:
    """Two ADTS files joined with ``cat`` (44.1 kHz stereo, then 22.05 kHz mono), as ffmpeg itself decodes them."""
    upload = {"file": ("joined.aac", aac_changing_midway(ffmpeg, tmp_path), "audio/aac")}
    for route in (REFERENCE, OPENAI):
        response = await client.post(route, files=upload, data={"response_format": "json"})
        assert response.status_code == 200, response.text
        assert response.json()["text"].lower().count("forward") == 2, response.text


async def test_audio_under_a_tenth_of_a_second_is_refused(client: AsyncTestClient[Litestar], tmp_path: Path) -> None:
    """OpenAI refuses audio under 0.1 s (audio_too_short); so does the gateway, as ASR-6040, in every mode."""
    for samples in (100, 1_000):  # 6 ms (under one 10 ms analysis frame) and 62 ms
        path = tmp_path / f"{samples}.wav"
        write_wav(path, (np.sin(np.arange(samples) / 5) * 8000).astype(np.int16))
        upload = {"file": (path.name, path.read_bytes(), "audio/wav")}
        for mode in ("full", "chunked"):
            body = reference_error(
                await client.post(REFERENCE, files=upload, data={"process_type": mode}), 400, "ASR-6040"
            )
            assert "at least 0.1 s" in str(body["error"])
        asked = {"response_format": "verbose_json", "chunking_strategy": "auto"}
        openai_error(await client.post(OPENAI, files=upload, data=asked), 400, "ASR-6040")
    await assert_still_serving(client)


async def test_a_file_sent_as_a_text_field_says_how_to_send_it(client: AsyncTestClient[Litestar]) -> None:
    """``curl -F file=<a.wav`` (``<``, not ``@``) sends the audio as a text field: its bytes are not text."""
    as_text = {"file": (None, GOOD.read_bytes())}
    body = reference_error(await client.post(REFERENCE, files=as_text), 400, "ASR-6045")
    assert "-F file=@" in str(body["error"])
    error = openai_error(await client.post(OPENAI, files=as_text), 400, "ASR-6045", param="file")
    assert "-F file=@" in str(error["message"])
    await assert_still_serving(client)


async def test_a_file_named_only_the_rfc_5987_way_is_a_file(client: AsyncTestClient[Litestar]) -> None:
    """Old urllib3 named a non-ASCII file with ``filename*=UTF-8''...`` alone: the part was taken for text."""
    speech = clip("goforward")
    head = "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''caf%C3%A9.wav\r\nContent-Type: audio/wav"
    body = f"--b\r\n{head}\r\n\r\n".encode() + speech.path.read_bytes() + b"\r\n--b--\r\n"
    form = {"Content-Type": "multipart/form-data; boundary=b"}
    response = await client.post(OPENAI, content=body, headers=form)
    assert response.status_code == 200, response.text
    assert wer(speech.reference, response.json()["text"]) < 0.3


async def test_a_client_gone_mid_upload_is_no_server_fault(
    app: Litestar, client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    """Litestar calls a body cut short a server error; the gateway knows it as a client gone (499, nothing logged
    as an error), and serves the next request."""
    content_type, body = multipart([("model", "whisper-1"), ("file", ("long.wav", "audio/wav", b"\0" * 300_000))])
    with caplog.at_level(logging.INFO):
        for path in (REFERENCE, OPENAI):
            status, _ = await post_form(app, path, content_type, body, gone_after=2)
            assert status == CLIENT_GONE_STATUS
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "client disconnected" in caplog.text
    await assert_still_serving(client)  # the same app, started


async def test_a_field_naming_an_unknown_charset_is_a_bad_request(client: AsyncTestClient[Litestar]) -> None:
    content_type, body = multipart([("file", (GOOD.name, "audio/wav", GOOD.read_bytes()))])
    boundary = content_type.split("boundary=")[1]
    field = f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\nContent-Type: text/plain; charset=bogus'
    body = field.encode() + b"\r\n\r\nhello\r\n" + body
    for path in (REFERENCE, OPENAI):
        response = await client.post(path, content=body, headers={"Content-Type": content_type})
        error = (
            reference_error(response, 400, "ASR-6045") if path == REFERENCE else openai_error(response, 400, "ASR-6045")
        )
        assert "charset" in str(error.get("error", error.get("message")))
    await assert_still_serving(client)


async def test_text_over_a_mebibyte_is_refused_unread(client: AsyncTestClient[Litestar]) -> None:
    """Text fields are held in memory (the file goes to disk): a 200 MB prompt took 0.3 GiB of the server's.

    The bound is on every text field together (300 fields of 1 MiB each took 0.3 GB too), and a refusal
    says ``Connection: close`` so that the server reads no more of the body.
    """
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    huge = {"model": "whisper-1", "prompt": "x" * (TEXT_LIMIT + 1)}
    response = await client.post(OPENAI, files=upload, data=huge)
    error = openai_error(response, 413, "ASR-6046", param="prompt")
    assert "The form's text fields hold over 1 MiB together (at 'prompt')" in str(error["message"])
    assert response.headers["connection"] == "close"
    many = {f"field{n}": "x" * (TEXT_LIMIT // 3) for n in range(4)}
    error = openai_error(await client.post(OPENAI, files=upload, data=many), 413, "ASR-6046", param="field3")
    body = reference_error(
        await client.post(REFERENCE, files=upload, data={"request_id": "r" * 2_000_000}), 413, "ASR-6046"
    )
    assert "'request_id'" in str(body["error"])
    at_the_limit = {"model": "whisper-1", "prompt": "x" * (TEXT_LIMIT - 100)}
    assert (await client.post(OPENAI, files=upload, data=at_the_limit)).status_code == 200
    await assert_still_serving(client)


async def test_long_audio_sent_as_text_gets_the_curl_hint(client: AsyncTestClient[Litestar], tmp_path: Path) -> None:
    """curl's -F file=<meeting.wav sends the audio as a text field: over the text bound, still the hint, not a 413."""
    audio = write_wav(tmp_path / "long.wav", build_long_input(40, seed=2).samples).read_bytes()  # 1.3 MB
    assert len(audio) > TEXT_LIMIT
    as_text = {"file": (None, audio, "audio/wav")}
    for path in (REFERENCE, OPENAI):
        response = await client.post(path, files=as_text, data={"model": "whisper-1"})
        assert response.status_code == 400, response.text
        assert "-F file=@audio.wav" in response.text
    await assert_still_serving(client)


async def test_a_charset_that_is_no_text_encoding_is_refused_before_its_text(client: AsyncTestClient[Litestar]) -> None:
    """punycode decodes in quadratic time (43 s of CPU for 1 MiB, the event loop blocked); undefined raised a 500."""
    upload = {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}
    for charset in ("punycode", "undefined"):
        prompt = {"prompt": (None, b"x" * 500_000, f"text/plain; charset={charset}")}
        response = await client.post(OPENAI, files={**upload, **prompt}, data={"model": "whisper-1"})
        error = openai_error(response, 400, "ASR-6045", param="prompt")
        assert f"charset '{charset}'" in str(error["message"])
    await assert_still_serving(client)
