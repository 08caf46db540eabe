"""Optional API keys: both route families refuse without a valid key; health, metrics and docs stay open."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from tests.conftest import make_settings
from tests.corpus import clip
from tests.fakes import SlowBackend

GOOD = clip("goforward").path


@pytest.fixture(scope="module")
async def keyed() -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(make_settings(api_keys=("k-one", "k-two")), backend=SlowBackend(delay=0.01))
    async with AsyncTestClient(app=app) as client:
        yield client


def files() -> dict[str, tuple[str, bytes, str]]:
    return {"file": (GOOD.name, GOOD.read_bytes(), "audio/wav")}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic k-one", "Bearer "])
async def test_refused_without_a_valid_key(keyed: AsyncTestClient[Litestar], authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    reference = await keyed.post("/v1/asr/transcribe/audio", files=files(), headers=headers)
    assert reference.status_code == 401
    assert reference.json()["code"] == "ASR-6047"
    assert set(reference.json()) == {"error", "code", "request_id"}
    assert reference.headers["www-authenticate"] == "Bearer"
    ours = await keyed.post("/v1/audio/transcriptions", files=files(), headers=headers)
    assert ours.status_code == 401
    assert ours.json()["error"]["code"] == "ASR-6047"
    assert (await keyed.get("/v1/models", headers=headers)).status_code == 401


async def test_options_without_a_key_is_a_401_in_its_familys_shape(keyed: AsyncTestClient[Litestar]) -> None:
    """Litestar's automatic OPTIONS handler inherits the guard: its refusal was a bare 500, not logged."""
    reference = await keyed.options("/v1/asr/transcribe/audio")
    assert reference.status_code == 401
    assert reference.json()["code"] == "ASR-6047"
    for path in ("/v1/audio/transcriptions", "/v1/models"):
        ours = await keyed.options(path)
        assert ours.status_code == 401
        assert ours.json()["error"]["code"] == "ASR-6047"
    metrics = (await keyed.get("/metrics")).text
    assert 'status_code="401"' in metrics
    assert 'status_code="500"' not in metrics


async def test_accepted_with_either_key(keyed: AsyncTestClient[Litestar]) -> None:
    for key in ("k-one", "k-two"):
        response = await keyed.post(
            "/v1/asr/transcribe/audio", files=files(), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text


async def test_the_openai_sdk_sends_its_key(keyed: AsyncTestClient[Litestar]) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{keyed.base_url}/v1", api_key="k-two", http_client=keyed, max_retries=0)
    assert (await sdk.audio.transcriptions.create(model="whisper-1", file=GOOD)).text.startswith("hello world")
    wrong = openai.AsyncOpenAI(base_url=f"{keyed.base_url}/v1", api_key="nope", http_client=keyed, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await wrong.audio.transcriptions.create(model="whisper-1", file=GOOD)


async def test_health_metrics_and_docs_stay_open(keyed: AsyncTestClient[Litestar]) -> None:
    assert (await keyed.get("/healthcheck")).status_code == 200
    assert (await keyed.get("/metrics")).status_code == 200
    assert (await keyed.get("/docs")).status_code == 200
    schema = (await keyed.get("/docs/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["BearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/v1/audio/transcriptions"]["post"]["security"] == [{"BearerAuth": []}]
    assert "security" not in schema["paths"]["/healthcheck"]["get"]


async def test_off_by_default(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/v1/models")).status_code == 200
    assert "securitySchemes" not in (await client.get("/docs/openapi.json")).json().get("components", {})
