"""Pieces handed to a vLLM on the same host as files, not as base64 inside the JSON.

A 30 s piece is 960 kB of WAV; as base64 in a chat request it is 1.3 MB that the
gateway encodes and sends and that vLLM's API server parses and decodes again.
With a directory both can read (vLLM started with ``--allowed-local-media-path``
at it), the gateway writes the WAV there and sends a ``file://`` URL of a few
dozen bytes. Measured in ``docs/benchmarks.md``.

Each gateway process writes only in a private folder made at start and removed at
close; each file is removed as soon as its call to vLLM ends, whatever the outcome.
A process killed outright (SIGKILL, OOM) cannot remove its folder: the folder is
held (``leftovers``), and the next gateway to start on the same directory removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from compat.errors import BackendFailed
from gateway.audio import ON_LOOP_SAMPLES
from gateway.backends.vllm import leftovers, shm
from gateway.backends.vllm.request import wav_parts

FOLDER_PREFIX = "asr-gateway-"  # a process's private folder, in the media directory
PRIVATE_ROOT_PREFIX = "asr-gateway-media-"  # a managed vLLM's directory, in /dev/shm


class SharedMedia:
    """A private folder in a directory vLLM may read.

    Args:
        root: the directory vLLM was given as ``--allowed-local-media-path``.
        owned: remove ``root`` itself at close (a directory made for a managed vLLM).
    """

    def __init__(self, root: Path, *, owned: bool = False) -> None:
        self.root = root
        self._owned = owned
        self._folder: Path | None = None
        self._lock: int | None = None  # the folder, open and locked (flock) while this process uses it
        # Names from a counter, paths as strings: the folder is this process's own, so a count is unique,
        # and a uuid4 (a getrandom call) and pathlib's objects cost more than the write (profiled).
        self._names = itertools.count()
        self._uri_prefix = ""  # the folder's file:// URL (Path.as_uri is slow), set at open

    @classmethod
    def private(cls) -> SharedMedia:
        """A directory of its own, for a managed vLLM: in memory (``/dev/shm``) where there is one."""
        memory = shm.SHARED_MEMORY  # mkdtemp makes a fresh 0700 folder in it
        base = memory if memory.is_dir() else Path(tempfile.gettempdir())
        for left in base.glob(PRIVATE_ROOT_PREFIX + "*"):
            if leftovers.settled(left) and all(leftovers.abandoned(folder) for folder in _gateway_folders(left)):
                leftovers.remove(left)
        return cls(Path(tempfile.mkdtemp(prefix=PRIVATE_ROOT_PREFIX, dir=base)), owned=True)

    @property
    def folder(self) -> Path:
        """Where this process writes (exists between ``open`` and ``close``)."""
        if self._folder is None:
            raise RuntimeError("SharedMedia is not open")
        return self._folder

    def open(self) -> None:
        """Make the private folder.

        Raises:
            ValueError: ``root`` is not a directory this process can write in.
        """
        if not self.root.is_dir():
            raise ValueError(f"{self.root} is not a directory")
        leftovers.remove_abandoned(_gateway_folders(self.root))
        try:
            folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=self.root))
            self._lock = leftovers.hold(folder)
        except OSError as error:
            raise ValueError(f"{self.root} is not writable ({error.strerror or error})") from error
        self._folder = folder
        self._uri_prefix = f"{folder.as_uri()}/"

    def close(self) -> None:
        """Remove the private folder and anything left in it (and the root, when owned)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    @asynccontextmanager
    async def placed(self, samples: np.ndarray) -> AsyncIterator[str]:
        """A ``file://`` URL of the samples as a 16 kHz mono WAV, removed on exit.

        Raises:
            BackendFailed: the file could not be written (the folder full or gone).
        """
        name = f"{next(self._names)}.wav"
        path = os.path.join(self.folder, name)
        writing: asyncio.Future[None] | None = None
        try:
            if len(samples) <= ON_LOOP_SAMPLES:
                _write(path, samples)
            else:
                writing = asyncio.ensure_future(asyncio.to_thread(_write, path, samples))
                await asyncio.shield(writing)  # cancelled meanwhile: the thread still runs; see finally
            yield self._uri_prefix + name
        finally:
            _remove(path)
            if writing is not None and not writing.done():  # cancelled while its thread writes the file
                writing.add_done_callback(functools.partial(_remove_written, path))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _remove_written(path: str, writing: asyncio.Future[None]) -> None:
    """Remove a file whose write ended after its request had gone (the write's error is of no one's concern)."""
    _remove(path)
    if not writing.cancelled():
        writing.exception()  # retrieved, so not reported as never retrieved


def _write(path: str, samples: np.ndarray) -> None:
    """The piece's WAV, written with one ``writev`` and its samples not copied.

    Not through a buffered file object: that adds an ``fstat``, an ``lseek``, an ``ioctl``
    and a second ``write`` for the header (counted with ``strace``).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            _write_all(fd, [memoryview(part).cast("B") for part in wav_parts(samples)])
        finally:
            os.close(fd)
    except OSError as error:
        raise BackendFailed(
            f"The piece could not be written for vLLM in {os.path.dirname(path)} ({error.strerror or error})."
        ) from error


def _write_all(fd: int, parts: list[memoryview]) -> None:
    """Write every byte of ``parts`` (``writev`` may write less than asked)."""
    while parts:
        written = os.writev(fd, parts)
        while parts and written >= parts[0].nbytes:
            written -= parts[0].nbytes
            parts.pop(0)
        if parts and written:
            parts[0] = parts[0][written:]


def _gateway_folders(directory: Path) -> list[Path]:
    """The gateways' private folders in ``directory``.

    Not a managed gateway's own directory: its name shares the prefix, and it is not
    locked itself, only the folder inside it.
    """
    return [p for p in directory.glob(FOLDER_PREFIX + "*") if not p.name.startswith(PRIVATE_ROOT_PREFIX)]
