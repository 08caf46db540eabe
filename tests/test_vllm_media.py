"""Pieces handed to vLLM as files in a shared directory (VLLM_MEDIA_DIR), on a real vLLM.

vLLM must hear the same audio as when it comes inline: its own prompt-token count
(audio tokens grow with the audio's length) must match the inline path's exactly.
Nothing may stay in the directory after a request, whatever its outcome.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.backends.factory import build_backend
from gateway.settings import StartupError
from tests.corpus import build_long_input, clip, write_wav
from tests.vllm_fixtures import VllmServer, vllm_settings

pytestmark = pytest.mark.vllm


def files_in(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


@pytest.fixture
async def by_file(vllm_server: VllmServer) -> AsyncIterator[AsyncTestClient[Litestar]]:
    assert vllm_server.media_dir is not None
    app = create_app(vllm_settings(vllm_server.base_url, vllm_media_dir=str(vllm_server.media_dir)))
    async with AsyncTestClient(app=app, timeout=120) as client:
        yield client
    assert list(vllm_server.media_dir.iterdir()) == []  # its private folder is gone with it


async def test_files_carry_the_same_audio_as_inline_and_leave_nothing(
    vllm_server: VllmServer,
    vllm_client: AsyncTestClient[Litestar],
    by_file: AsyncTestClient[Litestar],
    tmp_path: Path,
) -> None:
    assert vllm_server.media_dir is not None
    long_input = write_wav(tmp_path / "long.wav", build_long_input(95, seed=5).samples)
    for path, data in (
        (clip("ss_0870").path, {}),
        (clip("goforward").path, {"language": "fr"}),
        (long_input, {"process_type": "chunked"}),
    ):
        counts = []
        for client in (vllm_client, by_file):
            before = vllm_server.metrics()
            response = await client.post(
                "/v1/asr/transcribe/audio", files={"file": (path.name, path.read_bytes(), "audio/wav")}, data=data
            )
            assert response.status_code == 200, response.text
            assert response.json()["text"].startswith("hello world")
            after = vllm_server.metrics()
            requests = after.finished_requests - before.finished_requests
            counts.append((requests, after.prompt_tokens - before.prompt_tokens))
            assert files_in(vllm_server.media_dir) == []
        inline, as_file = counts
        assert inline == as_file, (path.name, data, counts)
    assert counts[0][0] == 4  # the 95 s file went as four pieces both ways


async def test_a_directory_vllm_may_not_read_gives_its_error_as_6004_and_leaves_nothing(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "not-shared"
    elsewhere.mkdir()
    app = create_app(vllm_settings(vllm_server.base_url, vllm_media_dir=str(elsewhere)))
    async with AsyncTestClient(app=app, timeout=120) as client:
        audio = clip("goforward").path.read_bytes()
        response = await client.post("/v1/asr/transcribe/audio", files={"file": ("a.wav", audio, "audio/wav")})
        # ASR-6004 passes vLLM's own status on, with its message: the operator's fix is named
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "ASR-6004"
        assert "--allowed-local-media-path" in response.json()["error"]
        openai_route = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", audio, "audio/wav")})
        assert openai_route.status_code == 400
        assert openai_route.json()["error"]["code"] == "ASR-6004"
        assert files_in(elsewhere) == []
    assert list(elsewhere.iterdir()) == []


async def test_a_media_dir_that_is_not_a_directory_stops_the_start(tmp_path: Path) -> None:
    backend = build_backend(vllm_settings("http://127.0.0.1:9/v1", vllm_media_dir=str(tmp_path / "missing")))
    with pytest.raises(StartupError, match=f"^VLLM_MEDIA_DIR={tmp_path / 'missing'}: .* is not a directory"):
        await backend.start()
