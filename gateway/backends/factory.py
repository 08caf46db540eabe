"""The backend the settings ask for."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.embedded import EmbeddedBackend, EmbeddedConfig
from gateway.settings import BackendKind, Settings


def build_backend(settings: Settings) -> Backend:
    """The embedded engine (default) or vLLM, configured from the settings."""
    if settings.backend is BackendKind.EMBEDDED:
        return EmbeddedBackend(
            EmbeddedConfig(
                model=settings.embedded_model,
                compute_type=settings.embedded_compute_type,
                threads=settings.embedded_threads,
                batch_size=settings.embedded_batch_size,
                beam_size=settings.embedded_beam_size,
            )
        )
    raise NotImplementedError("the vLLM backend is not built yet")


def pieces_in_flight(settings: Settings) -> int:
    """How many pieces may be at the backend at once.

    The embedded engine decodes ``embedded_batch_size`` windows a step; twice that
    keeps it busy while the next batch is queued, without pieces waiting inside
    it long enough to time out.
    """
    return 2 * settings.embedded_batch_size
