"""Metric names and labels as the contract names them; the dashboard queries only metrics we export."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.backends.embedded import EmbeddedBackend
from gateway.backends.factory import build_backend
from tests.conftest import make_settings
from tests.corpus import clip
from tests.fakes import SlowBackend, free_port, serve, until

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "asr-gateway.json"

# The contract's table: suffix, type, labels.
CONTRACT = {
    "_latency": ("histogram", {"path"}),
    "_http_requests": ("counter", {"path", "status"}),
    "_http_errors": ("counter", {"path", "status_code"}),
    "_audio_duration_seconds": ("histogram", {"path"}),
    "_queue_depth": ("gauge", set()),
    "_queue_wait_seconds": ("histogram", {"path"}),
    "_ffmpeg_convert_seconds": ("histogram", set()),
    "_ffmpeg_convert": ("counter", {"status"}),
}


async def exposition(prefix: str) -> str:
    """Metrics after one good request and one bad one, from the separate metrics port."""
    port = free_port()
    settings = make_settings(metrics_prefix=prefix, metrics_port=port, host="127.0.0.1")
    app = create_app(settings, backend=SlowBackend(delay=0.01))
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
        good = clip("goforward").path
        assert (await http.post("/v1/asr/transcribe/audio", files={"file": good.open("rb")})).status_code == 200
        bad = await http.post("/v1/audio/transcriptions", files={"file": ("x.mp3", b"not audio")})
        assert bad.status_code == 415
        assert (await http.get("/metrics")).status_code == 404, "with METRICS_PORT set, /metrics is not on the API"
        return (await http.get(f"http://127.0.0.1:{port}/metrics")).text


async def test_reference_metric_names_and_labels() -> None:
    text = await exposition("halong_qwen_asr")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for suffix, (kind, labels) in CONTRACT.items():
        family = families.get("halong_qwen_asr" + suffix)
        assert family is not None, f"halong_qwen_asr{suffix} is missing"
        assert family.type == kind, suffix
        sample_labels = {k for s in family.samples for k in s.labels if k != "le"}
        assert sample_labels == labels, f"{suffix}: {sample_labels} != {labels}"
    requests = families["halong_qwen_asr_http_requests"]
    statuses = {s.labels["status"] for s in requests.samples}
    assert statuses == {"all", "error"}
    decodes = {s.labels["status"] for s in families["halong_qwen_asr_ffmpeg_convert"].samples}
    assert decodes == {"success", "failed"}
    errors = {s.labels["status_code"] for s in families["halong_qwen_asr_http_errors"].samples}
    assert "415" in errors


@pytest.mark.parametrize("prefix", ["asr_gateway", "halong_qwen_asr"])
async def test_dashboard_queries_only_exported_metrics(prefix: str) -> None:
    """Under either METRICS_PREFIX, chosen with the dashboard's ``prefix`` variable."""
    text = await exposition(prefix)
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "prefix"]
    assert prefix in variable["query"].split(",")
    titles = [p["title"] for p in dashboard["panels"]]
    for needed in ("P99 latency", "Request rate", "Error rate", "Audio duration", "Queue depth"):
        assert any(t.startswith(needed) for t in titles), needed
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"].replace("${prefix}", prefix)  # as Grafana interpolates it
            names = set(re.findall(rf"\b({prefix}_[a-z_]+)\b", expr))
            assert names, target["expr"]
            for name in names:
                assert name in exported, f"{panel['title']}: {name} is not exported"


async def test_requests_no_route_takes_are_counted_under_one_label() -> None:
    """A 404 or 405 from routing is counted too (a scanner shows), under one label (its paths make no series)."""
    async with AsyncTestClient(app=create_app(make_settings(), backend=SlowBackend(delay=0.01))) as client:
        assert (await client.get("/wp-login.php")).status_code == 404
        assert (await client.get("/v1/audio/transcriptions")).status_code == 405
        families = {f.name: f for f in text_string_to_metric_families((await client.get("/metrics")).text)}
    errors = {
        s.labels["status_code"]: s.value
        for s in families["asr_gateway_http_errors"].samples
        if s.labels["path"] == "unrouted" and s.name.endswith("_total")
    }
    assert errors == {"404": 1.0, "405": 1.0}
    paths = {s.labels["path"] for s in families["asr_gateway_http_requests"].samples}
    assert "/wp-login.php" not in paths


async def test_metrics_on_the_api_port_when_metrics_port_is_0(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "# TYPE asr_gateway_latency histogram" in response.text
    kind, *parameters = [part.strip() for part in response.headers["content-type"].split(";")]
    assert kind == "text/plain"
    names = [parameter.split("=")[0] for parameter in parameters]
    assert sorted(names) == ["charset", "version"], response.headers["content-type"]  # each once


async def test_healthcheck_follows_the_backend_and_logs_its_changes(caplog: pytest.LogCaptureFixture) -> None:
    """500 with the contract's body while the backend does not answer; ASR-6000 logged once, not per probe."""
    backend = SlowBackend(delay=0.01)
    with caplog.at_level(logging.INFO, logger="gateway.routes.health"):
        async with AsyncTestClient(app=create_app(make_settings(), backend=backend)) as client:
            assert (await client.get("/healthcheck")).json() == {"status": "ok"}
            probe = await client.head("/healthcheck")  # uptime monitors probe with HEAD: GET's status, no body
            assert (probe.status_code, probe.content) == (200, b"")
            backend.up = False
            for _ in range(3):
                down = await client.get("/healthcheck")
                assert down.status_code == 500
                assert down.json() == {"detail": "service is not available"}
            probe = await client.head("/healthcheck")
            assert (probe.status_code, probe.content) == (500, b"")
            backend.up = True
            assert (await client.get("/healthcheck")).status_code == 200
    failed = [r for r in caplog.records if r.getMessage().startswith("healthcheck failed")]
    assert len(failed) == 1
    assert failed[0].error_code == "ASR-6000"  # type: ignore[attr-defined]
    assert sum(r.getMessage() == "healthcheck passes again" for r in caplog.records) == 1


async def test_one_path_label_under_a_root_path() -> None:
    """Under ROOT_PATH the request metrics and the pipeline's label a route alike, by its own path."""
    app = create_app(make_settings(root_path="/internal/asr"), backend=SlowBackend(delay=0.01))
    async with AsyncTestClient(app=app) as client:
        good = clip("goforward").path
        response = await client.post(
            "/internal/asr/v1/asr/transcribe/audio", files={"file": (good.name, good.read_bytes(), "audio/wav")}
        )
        assert response.status_code == 200, response.text
        text = (await client.get("/internal/asr/metrics")).text
        lost = await client.get("/healthcheck")  # outside the root path: the 404 names where the docs are
        assert lost.status_code == 404
        assert "(/internal/asr/docs)" in lost.json()["error"]["message"]
    paths = {
        family.name: {s.labels["path"] for s in family.samples if "path" in s.labels}
        for family in text_string_to_metric_families(text)
    }
    assert paths["asr_gateway_queue_wait_seconds"] == {"/v1/asr/transcribe/audio"}
    assert paths["asr_gateway_audio_duration_seconds"] == {"/v1/asr/transcribe/audio"}
    assert "/v1/asr/transcribe/audio" in paths["asr_gateway_latency"]
    assert not any(p.startswith("/internal") for p in paths["asr_gateway_latency"])


async def test_the_embedded_engines_replica_gauge_follows_its_health() -> None:
    """A lane that ended (a fault no request can cause on demand: cancelled here) turns both the gauge and
    /healthcheck down, not only /healthcheck."""
    settings = make_settings()
    backend = build_backend(settings)
    assert isinstance(backend, EmbeddedBackend)
    async with AsyncTestClient(app=create_app(settings, backend=backend), timeout=60) as client:

        async def gauge() -> float:
            text = (await client.get("/metrics")).text
            found = re.search(r'^asr_gateway_backend_replica_up\{replica="embedded"\} (\S+)$', text, re.MULTILINE)
            assert found, text
            return float(found.group(1))

        assert (await client.get("/healthcheck")).status_code == 200
        assert await gauge() == 1
        client.blocking_portal.call(backend._lanes[0].cancel)  # in the app's own loop, on the client's thread

        async def down() -> bool:
            return (await client.get("/healthcheck")).status_code == 500

        await until(down)
        assert await gauge() == 0
