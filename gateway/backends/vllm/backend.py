"""The vLLM backend: Qwen3-ASR behind vLLM's OpenAI-compatible server.

Each piece is one ``POST /v1/chat/completions`` with the audio as an
``input_audio`` part (or a ``file://`` URL when vLLM shares a directory with the
gateway: ``media``), sent to the least busy healthy replica (external servers at
``VLLM_BASE_URLS``, or one vLLM the gateway runs itself), through the OpenAI SDK's
HTTP client. Its errors become the catalogue's at this boundary; the pipeline owns
timeouts and the retry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import httpx2
import msgspec

from compat.errors import BackendFailed, BackendHTTPError, BackendTimeout, BackendUnreachable
from gateway.audio import ON_LOOP_SAMPLES
from gateway.backends.base import Capabilities, PieceRequest, PieceResult, ReplicaLoad
from gateway.backends.vllm.answer import forced_prefix, parse_answer
from gateway.backends.vllm.client import (
    CONTEXT_HINT,
    KEY_HINT,
    PATH_HINT,
    Replica,
    ReplicaPool,
    connection_lost,
    open_replica,
    stale_connection,
)
from gateway.backends.vllm.managed import ManagedConfig, ManagedVllm
from gateway.backends.vllm.media import SharedMedia
from gateway.backends.vllm.request import (
    ANSWER,
    audio_at,
    chat_body,
    inline_audio,
    wav_bytes,
)
from gateway.settings import StartupError

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(languages=None, word_timestamps=False, translation=False)
FALLBACK_MODEL_ID = "qwen3-asr"


@dataclass(frozen=True)
class VllmConfig:
    """Where vLLM is and how to talk to it.

    Attributes:
        base_urls: external servers; empty when ``managed`` is set.
        model: the model asked for (``VLLM_MODEL``), if any.
        served_model_name: the id to request; empty: discover it from ``/v1/models``.
        api_key: bearer key for vLLM.
        request_timeout: the client's read timeout, longer than any pipeline timeout.
        health_interval: seconds between background ``/health`` probes.
        managed: the child to run, when the gateway runs vLLM itself.
        media_dir: a directory vLLM may read (``--allowed-local-media-path``): pieces go
            there as files instead of base64. A managed vLLM always gets a private one.
    """

    base_urls: tuple[str, ...] = ()
    model: str = ""
    served_model_name: str = ""
    api_key: str = ""
    request_timeout: float = 310.0
    health_interval: float = 2.0
    managed: ManagedConfig | None = None
    media_dir: str = ""


class VllmBackend:
    """Qwen3-ASR on one or more vLLM servers, behind the backend Protocol.

    Args:
        config: servers (or the child to run), model and timeouts.
    """

    def __init__(self, config: VllmConfig) -> None:
        if not config.base_urls and config.managed is None:
            raise ValueError("vLLM needs base URLs or a managed server")
        self._config = config
        self._pool: ReplicaPool | None = None
        self._managed: ManagedVllm | None = None
        self._media: SharedMedia | None = None
        self._model: str | None = config.managed.served_model_name if config.managed else None

    @property
    def model_id(self) -> str:
        """The id vLLM serves the model under (discovered from ``/v1/models`` for external servers)."""
        if self._model is None and self._pool is not None:
            listed = next((r.models for r in self._pool.replicas if r.models), ())
            if listed:
                self._model = self._choose(listed)
        return self._model or self._config.served_model_name or self._config.model or FALLBACK_MODEL_ID

    @property
    def capabilities(self) -> Capabilities:
        """Any language (Qwen3-ASR detects its own); no word times, no translation."""
        return CAPABILITIES

    @property
    def replicas(self) -> tuple[Replica, ...]:
        """The servers pieces go to, with their health and load (empty before ``start``)."""
        return self._pool.replicas if self._pool is not None else ()

    @property
    def managed(self) -> ManagedVllm | None:
        """The child vLLM's supervisor, in managed mode."""
        return self._managed

    def load(self) -> list[ReplicaLoad]:
        """Each server's pieces in flight and health."""
        return [ReplicaLoad(r.base_url, r.in_flight, r.healthy) for r in self.replicas]

    async def start(self) -> None:
        """Open a client per server and start probing; in managed mode, start the child (in the background).

        Raises:
            StartupError: ``media_dir`` is not a writable directory.
        """
        managed = self._config.managed
        if self._config.media_dir:
            self._media = SharedMedia(Path(self._config.media_dir))
        elif managed is not None:  # the child runs on this host: hand it files
            self._media = SharedMedia.private()
        if self._media is not None:
            try:
                self._media.open()
            except ValueError as error:
                where = f"VLLM_MEDIA_DIR={self._config.media_dir}" if self._config.media_dir else "managed vLLM media"
                raise StartupError(f"{where}: {error}.") from None
            if managed is not None:
                managed = dataclasses.replace(managed, media_dir=str(self._media.root))
        urls = (self._config.managed.base_url,) if self._config.managed else self._config.base_urls
        replicas = [
            open_replica(url, api_key=self._config.api_key, timeout=self._config.request_timeout) for url in urls
        ]
        self._pool = ReplicaPool(replicas, interval=self._config.health_interval)
        if managed is not None:
            replica = replicas[0]
            pool = self._pool
            self._managed = ManagedVllm(
                managed,
                is_healthy=pool.probe_all,
                last_answer=lambda: replica.answered_at,  # the pool's probes and requests
                on_ready=lambda ready: pool.mark_up(replica) if ready else pool.mark_down(replica, "vLLM stopped"),
            )
            await self._pool.start()
            await self._managed.start()
            return
        await self._pool.start()
        if not self._pool.any_healthy():
            log.warning(
                "no vLLM replica answers yet",
                extra={"replicas": list(self._config.base_urls), "error_code": "ASR-6003"},
            )
        log.info(
            "vLLM backend started",
            extra={
                "model": self.model_id,
                "replicas": list(self._config.base_urls),
                "media_dir": str(self._media.folder) if self._media else None,
            },
        )

    async def close(self) -> None:
        """Stop the child (managed mode), the prober and the clients."""
        try:
            if self._managed is not None:
                await self._managed.stop()
        finally:  # the clients and the media folder go even if stopping the child failed
            try:
                if self._pool is not None:
                    await self._pool.close()
            finally:
                if self._media is not None:
                    self._media.close()

    async def healthy(self) -> bool:
        """Whether some vLLM answers ``/health`` now (in managed mode: the child, once it serves)."""
        if self._pool is None:
            return False
        if self._managed is not None and not self._managed.ready:
            return False
        return await self._pool.any_answers()

    async def transcribe(self, piece: PieceRequest) -> PieceResult:
        """One chat completion on the least busy healthy replica.

        Raises:
            BackendUnreachable: no connection (ASR-6003); the replica is skipped until healthy again.
            BackendTimeout: the client's own timeout (ASR-6002).
            BackendHTTPError: vLLM answered an error status, with its message (ASR-6004).
            BackendFailed: anything else (ASR-6001).
        """
        if self._pool is None:
            raise BackendFailed("The vLLM backend is not started.")
        if self._managed is not None and not self._managed.ready:
            why = "it failed to start (ASR-6010 in the logs); retrying" if self._managed.failed else "it is starting"
            raise BackendUnreachable(f"The managed vLLM is not serving: {why}.")
        if self._media is not None:
            async with self._media.placed(piece.samples) as url:
                raw = await self._on_replica(piece, chat_body(piece, audio_at(url), self.model_id))
        elif len(piece.samples) <= ON_LOOP_SAMPLES:
            raw = await self._on_replica(piece, self._inline_body(piece))
        else:
            raw = await self._on_replica(piece, await asyncio.to_thread(self._inline_body, piece))
        if piece.language:  # the prefilled turn is not echoed back: only the text follows it
            answer = parse_answer(forced_prefix(piece.language) + raw)
            return PieceResult(text=answer.text, language=piece.language, segments=None)
        answer = parse_answer(raw)
        return PieceResult(text=answer.text, language=answer.language, segments=None)

    def _inline_body(self, piece: PieceRequest) -> bytes:
        return chat_body(piece, inline_audio(wav_bytes(piece.samples)), self.model_id)

    async def _on_replica(self, piece: PieceRequest, body: bytes) -> str:
        assert self._pool is not None
        async with self._pool.lease(deadline=piece.deadline) as replica:
            raw = await self._complete(replica, piece, body)
            self._pool.mark_up(replica)
        return raw

    async def _complete(self, replica: Replica, piece: PieceRequest, body: bytes) -> str:
        """The raw answer of one chat completion (``body``: its JSON), with the client's errors translated.

        Sent through the SDK's HTTP client as it is, so its errors are the transport's: a
        timeout (or a lost connection, which the transport also calls a timeout), any other
        transport error, or an error status, mapped as the SDK itself would.
        """
        try:
            try:
                response = await replica.http.post(replica.chat_url, content=body, headers=replica.chat_headers)
            except httpx2.TimeoutException as error:
                if not stale_connection(error):
                    raise
                # vLLM closes a connection after a 500; the pool handed it out again before it saw that
                response = await replica.http.post(replica.chat_url, content=body, headers=replica.chat_headers)
        except httpx2.TimeoutException as error:
            if connection_lost(error):
                self._pool_mark_down(replica, str(error.__cause__ or error))
                raise BackendUnreachable(f"vLLM at {replica.base_url} is unreachable: {error.__cause__}") from error
            raise BackendTimeout(f"vLLM at {replica.base_url} did not answer in time: {error}") from error
        except httpx2.TransportError as error:
            self._pool_mark_down(replica, str(error))
            raise BackendUnreachable(f"vLLM at {replica.base_url} is unreachable: {error}") from error
        except Exception as error:
            raise BackendFailed(f"vLLM at {replica.base_url} failed: {type(error).__name__}: {error}") from error
        if response.status_code >= 400:
            raise self._refusal(replica, piece, response)
        try:
            answer = ANSWER.decode(response.content)
        except msgspec.DecodeError as error:  # not JSON, or not a chat completion
            raise BackendFailed(f"vLLM at {replica.base_url} answered no chat completion: {error}") from error
        if answer.cut_short:
            log.warning(
                "vLLM cut the answer short (context or max_tokens)",
                extra={"request_id": piece.request_id, "piece": piece.index, "replica": replica.base_url},
            )
        return answer.text

    def _refusal(self, replica: Replica, piece: PieceRequest, response: httpx2.Response) -> BackendHTTPError:
        """The error status vLLM answered, as ASR-6004, with what to do where the cause is known."""
        status, message = response.status_code, _message(response)
        # another healthy replica may be set up otherwise: only then is a refusal worth sending there
        elsewhere = self._pool is not None and any(r.healthy and r is not replica for r in self._pool.replicas)
        if status in (401, 403):
            message = (
                f"vLLM refused the gateway's key ({status}: {message}): the server is misconfigured, not the "
                f"request; {KEY_HINT}."
            )
        elif status == 404 and not replica.base_url.rstrip("/").endswith("/v1"):  # vLLM's routes are under /v1
            message = (
                f"vLLM answered 404 at {replica.chat_url} ({message}): the server is misconfigured, not the "
                f"request; {PATH_HINT}."
            )
        elif status == 400 and "maximum context length" in message:  # vLLM's words for a prompt over --max-model-len
            message = (
                f"vLLM answered 400: {message.rstrip('.')} ({piece.seconds:.0f} s of audio in one piece); "
                f"{CONTEXT_HINT}."
            )
        else:
            message = f"vLLM answered {status}: {message}"
        return BackendHTTPError(message, backend_status=status, elsewhere=elsewhere)

    def _pool_mark_down(self, replica: Replica, why: str) -> None:
        if self._pool is not None:
            self._pool.mark_down(replica, why)

    def _choose(self, listed: tuple[str, ...]) -> str:
        wanted = self._config.served_model_name or self._config.model
        if not wanted or wanted in listed:
            return wanted or listed[0]
        log.warning(
            "vLLM does not serve the model configured: using the one it serves",
            extra={"configured": wanted, "served": list(listed)},
        )
        return listed[0]


def _message(response: httpx2.Response) -> str:
    """The message vLLM wrote (``{"error": {"message": ...}}`` or ``{"message": ...}``), else its body."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return response.text[:500] or response.reason_phrase
