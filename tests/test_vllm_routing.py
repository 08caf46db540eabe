"""Replica routing, health and error mapping of the vLLM backend, without vLLM.

Routing is pure logic and runs against fake probes. Error mapping runs the real
OpenAI client against tiny local HTTP servers that misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import numpy as np
import pytest

from compat.errors import BackendFailed, BackendHTTPError, BackendTimeout, BackendUnreachable, InvalidRequest
from gateway.backends.base import PieceRequest
from gateway.backends.factory import build_backend, pieces_in_flight
from gateway.backends.vllm import VllmBackend, VllmConfig
from gateway.backends.vllm import client as client_module
from gateway.backends.vllm.client import Replica, ReplicaPool, connection_lost, open_replica
from gateway.metrics import Metrics
from gateway.pipeline.options import Mode, Options
from gateway.pipeline.plan import plan_full
from gateway.pipeline.run import PieceOutcome, PieceRunner
from tests.conftest import make_settings


def replicas(count: int) -> list[Replica]:
    return [open_replica(f"http://replica-{i}:8000/v1", api_key="", timeout=5) for i in range(count)]


def fake_probe(up: set[str]) -> Callable[[Replica], Awaitable[bool]]:
    async def probe(replica: Replica) -> bool:
        return replica.base_url in up

    return probe


async def eventually(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true in time")


def test_health_url_is_at_the_server_root() -> None:
    assert replicas(1)[0].health_url == "http://replica-0:8000/health"
    assert open_replica("http://h/vllm/v1/", api_key="", timeout=1).health_url == "http://h/vllm/health"


async def test_fewest_in_flight_wins_and_ties_take_turns() -> None:
    a, b, c = replicas(3)
    pool = ReplicaPool([a, b, c], probe=fake_probe({a.base_url, b.base_url, c.base_url}))
    await pool.probe_all()
    assert [pool.pick() for _ in range(6)] == [a, b, c, a, b, c]
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
    assert pool.pick() is b
    b.in_flight = 5
    assert pool.pick() is c


async def fail_on_lease(
    pool: ReplicaPool, error: BaseException | None, leased: list[Replica], deadline: float | None = None
) -> None:
    """One request through the pool that ends in ``error``, or (None) hangs until it is cancelled."""
    async with pool.lease(deadline=deadline) as replica:
        leased.append(replica)
        if error is None:
            await asyncio.sleep(60)
        else:
            raise error


async def test_a_replica_that_just_failed_is_passed_over_while_another_is_fine() -> None:
    """A piece's retry goes to another replica; a replica failing fast (still "healthy") gets no extra share."""
    a, b = replicas(2)

    def time_passes() -> None:  # past the window, without a sleep a busy machine could stretch
        for replica in (a, b):
            replica.failed_at -= client_module.RECENT_FAILURE + 1

    pool = ReplicaPool([a, b], probe=fake_probe({a.base_url, b.base_url}))
    await pool.probe_all()
    leased: list[Replica] = []
    with pytest.raises(BackendFailed):
        await fail_on_lease(pool, BackendFailed("vLLM answered 500"), leased)
    assert leased == [a]
    assert [pool.pick() for _ in range(4)] == [b, b, b, b], "the retry and what follows go to the other one"
    with pytest.raises(TimeoutError):  # a cancelled call (a client gone, a timeout) does not count
        await asyncio.wait_for(fail_on_lease(pool, None, leased), 0.01)
    assert leased == [a, b]
    assert [pool.pick() for _ in range(4)] == [b, b, b, b]
    time_passes()
    assert {pool.pick() for _ in range(4)} == {a, b}, "the failure is old now"
    with pytest.raises(BackendFailed):
        await fail_on_lease(pool, BackendFailed("vLLM answered 500"), leased)
    with pytest.raises(BackendFailed):
        await fail_on_lease(pool, BackendFailed("vLLM answered 500"), leased)
    assert {pool.pick() for _ in range(4)} == {a, b}, "both failed just now: both are candidates again"
    time_passes()
    with pytest.raises(InvalidRequest):  # the request's own fault says nothing of the replica
        await fail_on_lease(pool, InvalidRequest("not audio"), leased)
    assert leased[-1].failed_at < time.monotonic() - client_module.RECENT_FAILURE
    assert {pool.pick() for _ in range(4)} == {a, b}


async def test_a_call_cancelled_at_its_deadline_was_the_replicas_failure() -> None:
    """The piece's timeout cancels the call: that replica was too slow, so the retry goes elsewhere."""
    a, b = replicas(2)
    pool = ReplicaPool([a, b], probe=fake_probe({a.base_url, b.base_url}))
    await pool.probe_all()
    leased: list[Replica] = []
    deadline = asyncio.get_running_loop().time() + 0.05
    with pytest.raises(TimeoutError):
        async with asyncio.timeout_at(deadline):
            await fail_on_lease(pool, None, leased, deadline=deadline)
    assert leased == [a]
    assert [pool.pick() for _ in range(4)] == [b, b, b, b]


def chat_hangs(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None]:
    """A replica whose /health says 200 while its chat completions never answer (its engine stuck)."""

    async def handle() -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0
            )
            await reader.readexactly(length)
            if b"/health" not in head.split(b"\r\n")[0]:
                await reader.read()  # until the client gives up
                break
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        writer.close()

    return handle()


async def test_a_piece_that_timed_out_on_a_stuck_replica_is_retried_on_another() -> None:
    """Two requests at once take a replica each; the one on the stuck replica times out. Its retry went back
    to it (the cancelled call no longer counted in flight there, and a cancellation marked nothing)."""
    answer = json.dumps({"choices": [{"message": {"content": "language English<asr_text>hi"}}]}).encode()
    async with http_server(chat_hangs) as stuck, http_server(answering_forever(answer)) as fine:
        backend = VllmBackend(VllmConfig(base_urls=(stuck, fine), served_model_name="m"))
        await backend.start()
        try:
            runner = PieceRunner(backend, max_in_flight=8, metrics=Metrics("routing_test"))
            samples = np.zeros(16_000, dtype=np.int16)
            options = Options(mode=Mode.FULL, request_id="r")

            async def one() -> PieceOutcome:
                (outcome,) = [o async for o in runner.run(samples, plan_full(samples), options, piece_timeout=0.5)]
                return outcome

            outcomes = await asyncio.gather(one(), one())
        finally:
            await backend.close()
    assert [o.error for o in outcomes] == [None, None]
    assert sorted(o.attempts for o in outcomes) == [1, 2]


async def test_the_health_check_answers_with_the_first_replica_that_does() -> None:
    """One silent replica made every /healthcheck wait its probe's timeout while another served."""
    a, b = replicas(2)
    silent_answers = asyncio.Event()

    async def probe(replica: Replica) -> bool:
        if replica is a:
            await silent_answers.wait()
            return False
        return True

    pool = ReplicaPool([a, b], probe=probe)
    pool.mark_up(a)  # it served until now
    assert await asyncio.wait_for(pool.any_answers(), 5)  # before the silent one's probe has ended
    assert b.healthy
    assert a.healthy, "its probe has not ended yet"
    silent_answers.set()
    await eventually(lambda: not a.healthy)  # its probe went on, and its state follows
    await pool.close()


async def test_leases_spread_concurrent_requests_evenly() -> None:
    pool_replicas = replicas(3)
    pool = ReplicaPool(pool_replicas, probe=fake_probe({r.base_url for r in pool_replicas}))
    await pool.probe_all()
    seen: list[Replica] = []
    release = asyncio.Event()

    async def request() -> None:
        async with pool.lease() as replica:
            seen.append(replica)
            await release.wait()

    tasks = [asyncio.create_task(request()) for _ in range(9)]
    await asyncio.sleep(0)
    assert [r.in_flight for r in pool_replicas] == [3, 3, 3]
    release.set()
    await asyncio.gather(*tasks)
    assert [r.in_flight for r in pool_replicas] == [0, 0, 0]
    assert sorted(seen.count(r) for r in pool_replicas) == [3, 3, 3]


async def test_unhealthy_replica_is_skipped_until_it_answers_again() -> None:
    a, b = replicas(2)
    up = {a.base_url, b.base_url}
    pool = ReplicaPool([a, b], probe=fake_probe(up), interval=0.01)
    await pool.start()
    try:
        pool.mark_down(b, "connection refused")  # as a failed request does
        up.discard(b.base_url)
        b.in_flight, a.in_flight = 0, 10
        assert {pool.pick() for _ in range(5)} == {a}, "b is skipped though it is idle"
        up.add(b.base_url)
        await eventually(lambda: b.healthy)
        assert pool.pick() is b
    finally:
        await pool.close()


async def test_background_probe_marks_a_silent_replica_down() -> None:
    a, b = replicas(2)
    up = {a.base_url, b.base_url}
    pool = ReplicaPool([a, b], probe=fake_probe(up), interval=0.01)
    await pool.start()
    try:
        assert pool.any_healthy()
        assert a.healthy
        assert b.healthy
        up.discard(a.base_url)
        await eventually(lambda: not a.healthy)
        assert {pool.pick() for _ in range(4)} == {b}
        # what a managed vLLM's hang watch reads: b's answers go on, a's stopped
        silent_since = a.answered_at
        await eventually(lambda: b.answered_at > silent_since + 0.05)
        assert a.answered_at == silent_since
    finally:
        await pool.close()


async def test_with_no_healthy_replica_every_replica_is_tried() -> None:
    a, b = replicas(2)
    pool = ReplicaPool([a, b], probe=fake_probe(set()))
    assert not await pool.probe_all()
    assert {pool.pick() for _ in range(4)} == {a, b}


def test_a_pool_needs_a_replica() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ReplicaPool([])


def test_pieces_in_flight_scale_with_replicas() -> None:
    one = make_settings(backend="vllm", vllm_base_urls="http://a:8000/v1")
    two = make_settings(backend="vllm", vllm_base_urls="http://a:8000/v1,http://b:8000/v1")
    managed = make_settings(backend="vllm", vllm_model="Qwen/Qwen3-ASR-1.7B", vllm_pieces_per_replica="16")
    assert pieces_in_flight(one) == 64
    assert pieces_in_flight(two) == 128
    assert pieces_in_flight(managed) == 16


def test_factory_builds_the_vllm_backend_with_a_long_enough_timeout() -> None:
    backend = build_backend(make_settings(backend="vllm", vllm_base_urls="http://a:8000/v1", full_timeout_seconds="42"))
    assert isinstance(backend, VllmBackend)
    assert backend.capabilities.languages is None
    assert not backend.capabilities.word_timestamps
    assert not backend.capabilities.translation


# --- error mapping, against small local servers -----------------------------------------------


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def http_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()


def answering(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        writer.write(head.encode() + b"connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    return handle


def answering_forever(body: bytes) -> Handler:
    """A replica that answers every request on a connection with ``body`` (its /health too)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0
                )
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handle


async def hanging(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):  # never answers; ends when the client gives up
        pass
    writer.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def transcribe_once(*base_urls: str, request_timeout: float = 5) -> VllmBackend:
    backend = VllmBackend(VllmConfig(base_urls=base_urls, served_model_name="m", request_timeout=request_timeout))
    await backend.start()
    try:
        await backend.transcribe(PieceRequest(samples=np.zeros(1600, dtype=np.int16)))
    finally:
        await backend.close()
    return backend


async def test_connection_refused_is_unreachable_and_marks_the_replica_down() -> None:
    url = closed_port_url()
    backend = VllmBackend(VllmConfig(base_urls=(url,), served_model_name="m"))
    await backend.start()
    try:
        backend.replicas[0].healthy = True
        with pytest.raises(BackendUnreachable) as raised:
            await backend.transcribe(PieceRequest(samples=np.zeros(1600, dtype=np.int16)))
        assert raised.value.code == "ASR-6003"
        assert not backend.replicas[0].healthy
        assert not await backend.healthy()
    finally:
        await backend.close()


async def dropping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()  # as a vLLM killed mid-request: the connection ends with no answer


async def test_a_connection_dropped_mid_request_is_unreachable_not_a_timeout() -> None:
    # the SDK's aiohttp transport reports a dropped connection as a connect timeout
    async with http_server(dropping) as url:
        with pytest.raises(BackendUnreachable) as raised:
            await transcribe_once(url)
    assert raised.value.code == "ASR-6003"


async def test_the_clients_own_timeout_is_a_backend_timeout() -> None:
    async with http_server(hanging) as url:
        with pytest.raises(BackendTimeout) as raised:
            await transcribe_once(url, request_timeout=0.3)
    assert raised.value.code == "ASR-6002"


async def test_an_error_status_passes_on_with_vllms_message() -> None:
    body = json.dumps({"error": {"message": "Input length (2053) exceeds the limit", "type": "BadRequestError"}})
    async with http_server(answering(400, body.encode())) as url:
        with pytest.raises(BackendHTTPError) as raised:
            await transcribe_once(url)
    assert raised.value.code == "ASR-6004"
    assert raised.value.http_status == 400
    assert raised.value.message == "vLLM answered 400: Input length (2053) exceeds the limit"
    assert not raised.value.worth_resending, "the only vLLM there is would refuse the same piece again"


def healthy_but_refusing(status: int) -> Handler:
    """A vLLM whose /health and model list answer, and which refuses every chat completion with ``status``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        if path.endswith(b"/health"):
            code, body = 200, b""
        elif path.endswith(b"/models"):
            code, body = 200, b'{"object": "list", "data": [{"id": "m", "object": "model"}]}'
        else:
            code, body = status, b'{"error": {"message": "no"}}'
        length = int(
            next(
                (line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
                b"0",
            )
        )
        await reader.readexactly(length)
        writer.write(
            f"HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n".encode()
            + b"connection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    return handle


async def test_a_refusal_is_worth_resending_when_another_healthy_replica_may_be_set_up_otherwise() -> None:
    async with http_server(healthy_but_refusing(400)) as first, http_server(healthy_but_refusing(400)) as second:
        with pytest.raises(BackendHTTPError) as raised:
            await transcribe_once(first, second)
    assert raised.value.worth_resending
    # the other replica down: the same refusal would come back from the same one
    refusing = answering(400, b'{"error": {"message": "no"}}')  # its /health fails too
    async with http_server(healthy_but_refusing(400)) as up, http_server(refusing) as down:
        with pytest.raises(BackendHTTPError) as raised:
            await transcribe_once(up, down)
    assert not raised.value.worth_resending


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_a_timeout_rate_limit_or_server_error_is_worth_resending(status: int) -> None:
    async with http_server(answering(status, b'{"error": {"message": "busy"}}')) as url:
        with pytest.raises(BackendHTTPError) as raised:
            await transcribe_once(url)
    assert raised.value.http_status == status
    assert raised.value.worth_resending


async def test_anything_else_is_a_backend_failure() -> None:
    async with http_server(answering(200, b'{"choices": "not a list"}')) as url:
        with pytest.raises(BackendFailed) as raised:
            await transcribe_once(url)
    assert raised.value.code == "ASR-6001"


async def test_a_host_that_never_accepts_is_unreachable_not_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connect timeout (a blackholed host: here a listener whose backlog is full, so SYNs are dropped) is a
    lost connection: ASR-6003 and the replica marked down, not ASR-6002 as for a vLLM that is slow to answer."""
    monkeypatch.setattr(client_module, "CONNECT_TIMEOUT", 0.5)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        host, port = listener.getsockname()
        fillers = []
        for _ in range(4):  # fill the backlog; the kernel drops later SYNs
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((host, port))
            fillers.append(filler)
        replica = open_replica(f"http://{host}:{port}/v1", api_key="", timeout=30)
        try:
            with pytest.raises(Exception) as caught:  # noqa: PT011 - the transport's own timeout type is the point
                await replica.http.post(replica.chat_url, content=b"{}")
            assert "Timeout" in type(caught.value).__name__, repr(caught.value)
            assert connection_lost(caught.value)
        finally:
            await replica.http.aclose()
            for filler in fillers:
                filler.close()
