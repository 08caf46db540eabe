"""Folders a killed gateway leaves (media, its vLLM's sockets) are removed by the next one; a live one's never are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gateway.backends.vllm import leftovers, shm
from gateway.backends.vllm.managed import SOCKETS_PREFIX, sockets_folder
from gateway.backends.vllm.media import SharedMedia

# A gateway's media handling in a child process: open, leave a piece's file behind, wait to be killed.
CHILD = """
import sys, time
from pathlib import Path
from gateway.backends.vllm import shm
from gateway.backends.vllm.media import SharedMedia
kind, where = sys.argv[1], Path(sys.argv[2])
if kind == "private":
    shm.SHARED_MEMORY = where  # where /dev/shm would be
media = SharedMedia.private() if kind == "private" else SharedMedia(where)
media.open()
(media.folder / "piece.wav").write_bytes(b"RIFF")
print(media.folder, flush=True)
time.sleep(600)
"""


# A managed gateway's folder for its vLLM's sockets, in a child process killed while it holds it.
SOCKETS_CHILD = """
import time
from gateway.backends.vllm.managed import sockets_folder
folder, _ = sockets_folder()
(folder / "engine-socket").touch()
print(folder, flush=True)
time.sleep(600)
"""


def killed_gateway_folder(kind: str, where: Path) -> Path:
    """The private folder of a gateway process killed with SIGKILL (nothing of it cleaned up)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(where)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    folder = Path(child.stdout.readline().strip())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert (folder / "piece.wav").exists()
    return folder


def age(*paths: Path) -> None:
    """Make directories look untouched for longer than the grace period."""
    past = time.time() - leftovers.GRACE_SECONDS - 5
    for path in paths:
        os.utime(path, (past, past))


def test_a_killed_gateways_folder_is_removed_and_a_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = killed_gateway_folder("shared", tmp_path)
    alive = SharedMedia(tmp_path)
    alive.open()
    monkeypatch.setattr(shm, "SHARED_MEMORY", tmp_path)  # the media directory is /dev/shm itself
    managed = SharedMedia.private()  # a live managed gateway's directory beside the folders
    managed.open()
    try:
        starting = tmp_path / "asr-gateway-999999-starting"  # made a moment ago, lock not yet taken
        starting.mkdir()
        age(dead, alive.folder, managed.root, managed.folder)
        newcomer = SharedMedia(tmp_path)
        newcomer.open()
        assert not dead.exists(), "the killed gateway's folder and its file are gone"
        assert alive.folder.is_dir(), "a live gateway's folder is never taken"
        assert managed.folder.is_dir(), "nor a live managed gateway's directory"
        assert starting.is_dir(), "a folder younger than the grace period is left alone"
        newcomer.close()
    finally:
        alive.close()
        managed.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [starting.name]


def test_a_killed_managed_gateways_directory_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shm, "SHARED_MEMORY", tmp_path)
    dead = killed_gateway_folder("private", tmp_path).parent
    assert dead.parent == tmp_path
    age(dead, *dead.iterdir())
    fresh = SharedMedia.private()
    try:
        assert not dead.exists()
        assert fresh.root.is_dir()
    finally:
        fresh.close()
    assert list(tmp_path.iterdir()) == []


def test_a_killed_gateways_vllm_sockets_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-c", SOCKETS_CHILD], stdout=subprocess.PIPE, text=True, env=environment)
    assert child.stdout is not None
    dead = Path(child.stdout.readline().strip())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert dead.parent == tmp_path
    assert (dead / "engine-socket").exists()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    alive, alive_held = sockets_folder()  # a live gateway's child's
    young = tmp_path / f"{SOCKETS_PREFIX}starting"  # made a moment ago, lock not yet taken
    young.mkdir()
    age(dead, alive)
    fresh, fresh_held = sockets_folder()
    try:
        assert not dead.exists(), "the killed gateway's sockets folder is gone"
        assert alive.is_dir(), "a live gateway's is never taken"
        assert young.is_dir(), "a folder younger than the grace period is left alone"
        assert fresh.is_dir()
        assert fresh.name.startswith(SOCKETS_PREFIX)
    finally:
        for held in (alive_held, fresh_held):
            os.close(held)
