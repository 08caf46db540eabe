"""Prometheus metrics: the reference service's names under a configurable prefix, plus the backend's.

Each app gets its own registry, so that two apps (tests) never collide. The
reference's metrics (prefix ``halong_qwen_asr`` reproduces its names):

| suffix | type | labels |
| --- | --- | --- |
| ``_latency`` | histogram (s) | path |
| ``_http_requests_total`` | counter | path, status (``all`` or ``error``) |
| ``_http_errors_total`` | counter | path, status_code |
| ``_audio_duration_seconds`` | histogram | path |
| ``_queue_depth`` | gauge | |
| ``_queue_wait_seconds`` | histogram | path |
| ``_ffmpeg_convert_seconds`` | histogram | |
| ``_ffmpeg_convert_total`` | counter | status (``success``, ``failed``) |

and the gateway's own: ``_requests_in_progress`` (mode), ``_backend_pieces_in_flight`` (replica),
``_backend_replica_up`` (replica), ``_backend_piece_seconds`` (outcome), ``_backend_piece_retries_total``,
``_partial_results_total``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.backends.base import ReplicaLoad

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the output; nothing reads them

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
AUDIO_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
DECODE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class Metrics:
    """Every metric of one app, on its own registry.

    Args:
        prefix: the first part of every name (``METRICS_PREFIX``).
    """

    def __init__(self, prefix: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def name(suffix: str) -> str:
            return prefix + suffix

        self.latency = Histogram(
            name("_latency"), "Request latency in seconds", ["path"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.requests = Counter(
            name("_http_requests"), "HTTP requests (status=all counts every one, status=error the failed)",
            ["path", "status"], registry=r,
        )  # fmt: skip
        self.errors = Counter(name("_http_errors"), "HTTP errors by status code", ["path", "status_code"], registry=r)
        self.audio_duration = Histogram(
            name("_audio_duration_seconds"), "Duration of the audio transcribed", ["path"], buckets=AUDIO_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(name("_queue_depth"), "Requests waiting for a place", registry=r)
        self.queue_wait = Histogram(
            name("_queue_wait_seconds"), "Time spent waiting for a place", ["path"], buckets=WAIT_BUCKETS, registry=r
        )
        self.decode_seconds = Histogram(
            name("_ffmpeg_convert_seconds"), "Time to decode an upload to 16 kHz mono PCM", buckets=DECODE_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.decodes = Counter(name("_ffmpeg_convert"), "Decodes by outcome", ["status"], registry=r)
        self.in_progress = Gauge(name("_requests_in_progress"), "Requests holding a place", ["mode"], registry=r)
        self.piece_seconds = Histogram(
            name("_backend_piece_seconds"), "Backend time of one piece attempt", ["outcome"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.retries = Counter(name("_backend_piece_retries"), "Piece attempts after a failed first", registry=r)
        self.partials = Counter(name("_partial_results"), "Responses with ASR-6030 (some pieces failed)", registry=r)
        self._prefix = prefix

    def watch_backend(self, load: Callable[[], list[ReplicaLoad]]) -> None:
        """Export the backend's pieces in flight and health per replica, read at each scrape."""
        self.registry.register(_BackendCollector(self._prefix, load))


class _BackendCollector(Collector):
    def __init__(self, prefix: str, load: Callable[[], list[ReplicaLoad]]) -> None:
        self._prefix = prefix
        self._load = load

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            self._prefix + "_backend_pieces_in_flight",
            "Pieces sent to the backend and not yet answered",
            labels=["replica"],
        )
        up = GaugeMetricFamily(
            self._prefix + "_backend_replica_up", "Whether the replica answers (1) or not (0)", labels=["replica"]
        )
        for replica in self._load():
            in_flight.add_metric([replica.replica], replica.in_flight)
            up.add_metric([replica.replica], 1.0 if replica.up else 0.0)
        yield in_flight
        yield up
