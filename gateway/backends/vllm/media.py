"""Pieces handed to a vLLM on the same host as files, not as base64 inside the JSON.

A 30 s piece is 960 kB of WAV; as base64 in a chat request it is 1.3 MB that the
gateway encodes and sends and that vLLM's API server parses and decodes again.
With a directory both can read (vLLM started with ``--allowed-local-media-path``
at it), the gateway writes the WAV there and sends a ``file://`` URL of a few
dozen bytes. Measured in ``docs/benchmarks.md``.

Each gateway process writes only in a private folder made at start and removed at
close; each file is removed as soon as its call to vLLM ends, whatever the outcome.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from gateway.audio import ON_LOOP_SAMPLES
from gateway.backends.vllm import shm
from gateway.backends.vllm.request import wav_bytes


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

    @classmethod
    def private(cls) -> SharedMedia:
        """A directory of its own, for a managed vLLM: in memory (``/dev/shm``) where there is one."""
        memory = shm.SHARED_MEMORY  # mkdtemp makes a fresh 0700 folder in it
        root = Path(tempfile.mkdtemp(prefix="asr-gateway-media-", dir=memory if memory.is_dir() else None))
        return cls(root, owned=True)

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
            raise ValueError(f"VLLM_MEDIA_DIR {str(self.root)!r} is not a directory")
        try:
            self._folder = Path(tempfile.mkdtemp(prefix=f"asr-gateway-{os.getpid()}-", dir=self.root))
        except OSError as error:
            raise ValueError(f"VLLM_MEDIA_DIR {str(self.root)!r} is not writable: {error}") from error

    def close(self) -> None:
        """Remove the private folder and anything left in it (and the root, when owned)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    @asynccontextmanager
    async def placed(self, samples: np.ndarray) -> AsyncIterator[str]:
        """A ``file://`` URL of the samples as a 16 kHz mono WAV, removed on exit."""
        path = self.folder / f"{uuid.uuid4().hex}.wav"
        try:
            if len(samples) <= ON_LOOP_SAMPLES:
                _write(path, samples)
            else:
                await asyncio.to_thread(_write, path, samples)
            yield path.as_uri()
        finally:
            path.unlink(missing_ok=True)


def _write(path: Path, samples: np.ndarray) -> None:
    path.write_bytes(wav_bytes(samples))
