"""The backend the settings ask for."""

from __future__ import annotations

import shlex
import sys

import msgspec

from gateway.backends.base import Backend
from gateway.backends.embedded import EmbeddedBackend, EmbeddedConfig, worker_threads
from gateway.backends.vllm import ManagedConfig, VllmBackend, VllmConfig
from gateway.backends.vllm.managed import child_environment, free_port
from gateway.settings import BackendKind, Settings

VLLM_PIECE_SLACK_SECONDS = 10.0  # the client's timeout outlasts the pipeline's, which must fire first


def build_backend(settings: Settings) -> Backend:
    """The embedded engine (default) or vLLM, configured from the settings."""
    if settings.backend is BackendKind.EMBEDDED:
        return EmbeddedBackend(embedded_config(settings))
    return VllmBackend(
        VllmConfig(
            base_urls=settings.vllm_base_urls,
            model=settings.vllm_model,
            served_model_name=settings.vllm_served_model_name,
            api_key=settings.vllm_api_key,
            request_timeout=max(settings.full_timeout_seconds, settings.chunk_timeout_seconds)
            + VLLM_PIECE_SLACK_SECONDS,
            health_interval=settings.vllm_health_interval_seconds,
            managed=None if settings.vllm_base_urls else managed_config(settings),
            media_dir=settings.vllm_media_dir,
        )
    )


def managed_config(settings: Settings) -> ManagedConfig:
    """The vLLM child the gateway runs itself (``VLLM_MODEL`` with no ``VLLM_BASE_URLS``)."""
    # The gateway's own VLLM_* settings stay out of the child's environment: vLLM
    # reads VLLM_* variables itself and warns about (or misreads) names it does not own.
    own = {field.name.upper() for field in msgspec.structs.fields(Settings) if field.name.startswith("vllm_")}
    return ManagedConfig(
        python=settings.vllm_python or sys.executable,
        model=settings.vllm_model,
        served_model_name=settings.vllm_served_model_name or settings.vllm_model,
        port=settings.vllm_managed_port or free_port(),
        extra_args=tuple(shlex.split(settings.vllm_extra_args)),
        api_key=settings.vllm_api_key,
        startup_timeout=settings.vllm_startup_timeout_seconds,
        hang_timeout=settings.vllm_hang_seconds,
        health_interval=settings.vllm_health_interval_seconds,
        env=child_environment(drop=own - {"VLLM_API_KEY"}),
    )


def embedded_config(settings: Settings) -> EmbeddedConfig:
    """The embedded engine's part of the settings."""
    return EmbeddedConfig(
        model=settings.embedded_model,
        compute_type=settings.embedded_compute_type,
        threads=settings.embedded_threads,
        workers=settings.embedded_workers,
        batch_size=settings.embedded_batch_size,
        beam_size=settings.embedded_beam_size,
    )


def pieces_in_flight(settings: Settings) -> int:
    """How many pieces may be at the backend at once.

    Each embedded worker decodes ``embedded_batch_size`` windows a step, and the short
    rests that early stops leave share windows, up to four to one. Four windows' worth
    of pieces for every worker lets rests gather and share (measured on five shuffles of
    the 10-minute corpus file: 12.7 s mean against 13.3 s with two windows' worth, same
    WER; docs/benchmarks.md). A piece's timeout runs while it waits inside the engine,
    so under heavy CPU contention from other processes a piece can time out and be
    retried. vLLM batches continuously: ``vllm_pieces_per_replica`` for each replica
    (one when the gateway runs vLLM itself).
    """
    if settings.backend is BackendKind.VLLM:
        return settings.vllm_pieces_per_replica * max(1, len(settings.vllm_base_urls))
    workers, _ = worker_threads(embedded_config(settings))
    return 4 * settings.embedded_batch_size * workers
