"""vLLM replicas: one OpenAI client each, least-in-flight routing, and /health probing.

A replica that refuses a connection is skipped until it answers ``/health`` again;
a background task probes every replica every few seconds. When no replica is known
to be healthy, every replica is a candidate again: a request then fails fast with a
connection error rather than waiting for the next probe, or finds one that came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import aiohttp
import httpx2
import openai

from compat.errors import InvalidRequest

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0  # a healthy vLLM answers /health in milliseconds
CONNECT_TIMEOUT = 5.0
RECENT_FAILURE = 10.0  # a replica that just failed a request is passed over this long while another is fine
KEY_HINT = "VLLM_API_KEY must be one of the keys vLLM was started with (--api-key)"
CONTEXT_HINT = (
    "ask for chunked processing (process_type=chunked, or chunking_strategy=auto on /v1/audio/transcriptions), "
    "or serve vLLM with a larger --max-model-len (about 13 tokens a second of audio)"
)
PATH_HINT = "VLLM_BASE_URLS must be vLLM's OpenAI base URL, ending in /v1 (http://host:8000/v1)"


@dataclass(eq=False)
class Replica:
    """One vLLM server.

    Attributes:
        base_url: its OpenAI base URL (``http://host:8000/v1``).
        client: the OpenAI client for it (no retries: the pipeline retries): ``/health``, ``/v1/models``.
        http: that client's own HTTP client (the SDK's aiohttp transport), which each piece's chat
            completion goes through as it is: the SDK's request building around it cost 0.37-0.45 ms
            of CPU a call (``benchmarks.bench_sdk``, three runs; docs/benchmarks.md).
        chat_headers: the headers of a chat completion (its JSON, the key).
        healthy: whether it answered its last probe or request.
        in_flight: requests sent to it and not yet answered.
        models: the model ids it serves, once it has answered ``/v1/models``.
        answered_at: when it last answered a probe or a request (``time.monotonic()``; 0: never).
        list_failed: its model list could not be read (said once in the log, not at every probe).
        failed_at: when a request to it last ended in an error (``time.monotonic()``; see ``lease``).
    """

    base_url: str
    client: openai.AsyncOpenAI
    http: httpx2.AsyncClient
    chat_headers: dict[str, str]
    healthy: bool = False
    in_flight: int = 0
    models: tuple[str, ...] = ()
    answered_at: float = 0.0
    list_failed: bool = False
    failed_at: float = float("-inf")

    @property
    def health_url(self) -> str:
        """``/health`` at the server's root (outside ``/v1``)."""
        return self.base_url.rstrip("/").removesuffix("/v1") + "/health"

    @property
    def chat_url(self) -> str:
        """``/chat/completions`` under the base URL."""
        return self.base_url.rstrip("/") + "/chat/completions"


def open_replica(base_url: str, *, api_key: str, timeout: float) -> Replica:
    """A replica with its own client.

    Args:
        base_url: OpenAI base URL of the server.
        api_key: bearer key, or empty when the server has none.
        timeout: read timeout of one request; the pipeline's own timeouts must fire first.
    """
    limits = openai.Timeout(timeout, connect=CONNECT_TIMEOUT)
    key = api_key or "EMPTY"  # the SDK insists on a key; vLLM without --api-key ignores it
    # The SDK's aiohttp transport: about a third more requests per second than its default
    # httpx transport at concurrency 16 on a shared CPU (docs/benchmarks.md).
    http = openai.DefaultAioHttpClient(timeout=limits)
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=limits, http_client=http)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return Replica(base_url=base_url, client=client, http=http, chat_headers=headers)


def connection_lost(error: BaseException) -> bool:
    """Whether a timeout error was really a refused or dropped connection.

    The SDK's aiohttp transport maps every ``aiohttp.ClientConnectionError`` (refused,
    reset, server gone mid-answer) to a connect *timeout*, so the cause chain is what tells
    an unreachable vLLM from a slow one. A connection that could not be made in time (a host
    that drops packets) is unreachable too, not slow.
    """
    for cause in _causes(error):
        if isinstance(cause, aiohttp.ConnectionTimeoutError):  # no connection made at all: a blackholed host
            return True
        if isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError):
            return False
        if isinstance(cause, aiohttp.ClientConnectionError):
            return True
    return False


def stale_connection(error: BaseException) -> bool:
    """Whether a request failed on a kept-alive connection the server had already closed.

    vLLM closes the connection after a 500; the next request, sent on it before its close was
    seen, meets a reset (or a disconnect before any answer). Sending it again is safe: it was not
    served, and a vLLM that is really gone then refuses the new connection.
    """
    return any(
        isinstance(cause, aiohttp.ServerDisconnectedError)
        or (isinstance(cause, aiohttp.ClientOSError) and cause.errno == errno.ECONNRESET)
        for cause in _causes(error)
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then what caused it, and so on (the transport wraps aiohttp's errors in its own)."""
    cause: BaseException | None = error
    while cause is not None:
        yield cause
        cause = cause.__cause__ or cause.__context__


async def probe_health(replica: Replica) -> bool:
    """Whether ``/health`` answers 200; on the first success, also learn the served models."""
    try:
        await replica.client.get(replica.health_url, cast_to=str, options={"timeout": PROBE_TIMEOUT})
    except openai.OpenAIError:
        return False
    if not replica.models:
        try:
            page = await replica.client.models.list(timeout=PROBE_TIMEOUT)
            replica.models = tuple(model.id for model in page.data)
        except Exception as error:  # noqa: BLE001 - healthy all the same; asked again at the next probe
            if not replica.list_failed:
                _log_list_failure(replica, error)
            replica.list_failed = True
    return True


def _log_list_failure(replica: Replica, error: Exception) -> None:
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        # /health is open, /v1 is not: every request will be refused too
        log.warning(
            "vLLM refused the gateway's key",
            extra={"replica": replica.base_url, "status": error.status_code, "hint": KEY_HINT},
        )
    elif isinstance(error, openai.NotFoundError):  # /health answers at the root whatever the base URL's path
        log.warning(
            "vLLM has no model list under this base URL: every request will be a 404",
            extra={"replica": replica.base_url, "status": error.status_code, "hint": PATH_HINT},
        )
    else:
        log.warning(
            "vLLM's model list is unreadable; the configured model id is used until it is",
            extra={"replica": replica.base_url, "error": f"{type(error).__name__}: {error}"},
        )


Probe = Callable[[Replica], Awaitable[bool]]


class ReplicaPool:
    """Routes each request to the healthy replica with the fewest requests in flight.

    Args:
        replicas: the servers, in the order configured.
        probe: how a replica's health is checked (``probe_health``; tests pass fakes).
        interval: seconds between background probes.
    """

    def __init__(self, replicas: Sequence[Replica], *, probe: Probe = probe_health, interval: float = 2.0) -> None:
        if not replicas:
            raise ValueError("a pool needs at least one replica")
        self.replicas: tuple[Replica, ...] = tuple(replicas)
        self._probe = probe
        self._interval = interval
        self._turn = 0
        self._prober: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[bool]] = set()  # a health check's probes still under way

    def any_healthy(self) -> bool:
        """Whether some replica answered its last probe or request."""
        return any(r.healthy for r in self.replicas)

    def pick(self) -> Replica:
        """The replica for the next request.

        Among the healthy replicas (all of them, if none is), and of those the ones that
        have not just failed a request if there are any (so that a piece's retry goes
        elsewhere, and a replica answering every request with an error, which stays
        "healthy", takes no more of them than the others), those with the fewest
        requests in flight; ties go round-robin so idle replicas share the load.
        """
        candidates = [r for r in self.replicas if r.healthy] or list(self.replicas)
        recent = time.monotonic() - RECENT_FAILURE
        candidates = [r for r in candidates if r.failed_at < recent] or candidates
        fewest = min(r.in_flight for r in candidates)
        best = [r for r in candidates if r.in_flight == fewest]
        chosen = best[self._turn % len(best)]
        self._turn += 1
        return chosen

    @contextlib.asynccontextmanager
    async def lease(self, *, deadline: float | None = None) -> AsyncIterator[Replica]:
        """Pick a replica and count the request in flight on it until the block ends.

        A block that ends in an error marks the replica as having just failed; an
        ``InvalidRequest`` (the request's own fault) does not. A cancellation does only
        at or past ``deadline`` (the caller's timeout, ``loop.time()``): a replica that
        took that long failed, and the piece's retry must go elsewhere (it went back to
        the same stuck replica, which then counted nothing in flight); a client that
        left sooner says nothing of the replica.
        """
        replica = self.pick()
        replica.in_flight += 1
        try:
            yield replica
        except InvalidRequest:
            raise
        except Exception:
            replica.failed_at = time.monotonic()
            raise
        except asyncio.CancelledError:
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                replica.failed_at = time.monotonic()
            raise
        finally:
            replica.in_flight -= 1

    def mark_down(self, replica: Replica, why: str) -> None:
        """Skip the replica until it answers ``/health`` again."""
        if replica.healthy:
            log.warning(
                "vLLM replica unreachable",
                extra={"replica": replica.base_url, "error_code": "ASR-6003", "error": why},
            )
        replica.healthy = False

    def mark_up(self, replica: Replica) -> None:
        """Route to the replica again (it has just answered)."""
        replica.answered_at = time.monotonic()
        if not replica.healthy:
            log.info("vLLM replica healthy", extra={"replica": replica.base_url, "models": list(replica.models)})
        replica.healthy = True

    async def probe_all(self) -> bool:
        """Probe every replica now, update their state, and say whether any is healthy."""
        return any(await asyncio.gather(*(self._probe_one(r) for r in self.replicas)))

    async def any_answers(self) -> bool:
        """Probe every replica now and say whether any is healthy, as soon as one is.

        ``/healthcheck`` waited for the slowest probe: one silent replica made every answer take
        its probe's timeout (2 s), past an orchestrator's (Kubernetes: 1 s) while another served.
        The other probes finish in the background and update their replicas' state.
        """
        probes = [asyncio.create_task(self._probe_one(r)) for r in self.replicas]
        for probe in probes:
            self._probes.add(probe)
            probe.add_done_callback(self._probes.discard)
        for answered in asyncio.as_completed(probes):
            if await answered:
                return True
        return False

    async def _probe_one(self, replica: Replica) -> bool:
        ok = await self._probe(replica)
        if ok:
            self.mark_up(replica)
        else:
            self.mark_down(replica, f"{replica.health_url} did not answer 200")
        return ok

    async def start(self) -> None:
        """Probe once now (naming each replica that does not answer), then keep probing in the background."""
        await self.probe_all()
        for replica in self.replicas:
            if not replica.healthy:  # mark_down speaks only when a healthy replica goes down
                log.warning(
                    "vLLM replica not answering",
                    extra={"replica": replica.base_url, "error_code": "ASR-6003", "health": replica.health_url},
                )
        self._prober = asyncio.create_task(self._probe_forever(), name="vllm-health-probe")

    async def close(self) -> None:
        """Stop probing and close every client."""
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
        for probe in list(self._probes):
            probe.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)
        await asyncio.gather(*(r.client.close() for r in self.replicas), return_exceptions=True)

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.probe_all()
            except Exception:  # a probe must never stop the prober
                log.exception("vLLM health probe failed")
