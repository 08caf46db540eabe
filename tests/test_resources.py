"""Temporary files never outlive their request, and file descriptors do not grow, on every path."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.corpus import build_long_input, clip, write_wav
from tests.server import live_server


def open_files(pid: int) -> list[str]:
    folder = Path(f"/proc/{pid}/fd")
    out = []
    for fd in folder.iterdir():
        try:
            out.append(os.readlink(fd))
        except OSError:
            continue
    return out


def test_no_temp_file_or_descriptor_outlives_its_request(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    big = write_wav(tmp_path / "big.wav", build_long_input(60, seed=3).samples)  # 2 MB: spooled to disk
    assert big.stat().st_size > 1_500_000
    data = big.read_bytes()
    noise = (np.random.default_rng(0).integers(0, 255, 3_000_000, dtype=np.uint8)).tobytes()
    cases = [
        ("good.wav", data, {"process_type": "chunked"}, 200),
        ("cut.wav", data[: len(data) // 3], {}, 422),  # header says 60 s, a third arrives
        ("noise.mp3", noise, {}, 415),
        ("huge.wav", data * 3, {}, 413),  # over MAX_UPLOAD_MB=5
        ("good.wav", clip("goforward").path.read_bytes(), {"process_type": "unknown"}, 400),
    ]
    with live_server(tmp_path / "log", {"TMPDIR": str(temp), "MAX_UPLOAD_MB": "5"}) as server:
        pid = server.process.pid
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            http.post("/v1/asr/transcribe/audio", files={"file": ("warm.wav", clip("goforward").path.read_bytes())})
            baseline = len(open_files(pid))
            for _ in range(3):
                for name, content, fields, status in cases:
                    response = http.post("/v1/asr/transcribe/audio", files={"file": (name, content)}, data=fields)
                    assert response.status_code == status, (name, response.text)
                    assert not list(temp.iterdir()), f"a temporary file is left after {name}"
                    leftover = [f for f in open_files(pid) if "(deleted)" in f or str(temp) in f]
                    assert not leftover, f"after {name}: {leftover}"
            assert len(open_files(pid)) <= baseline + 2, "file descriptors grow with requests"


def test_glibc_is_asked_for_one_arena_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    from gateway.allocator import share_one_arena

    if platform.libc_ver()[0] == "glibc":
        assert share_one_arena(), "mallopt(M_ARENA_MAX, 1) was refused"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not share_one_arena(), "the user's MALLOC_ARENA_MAX wins"
