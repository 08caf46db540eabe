"""/docs is a manual a person can use: every route with its fields, responses and error bodies."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient


async def schema(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


async def test_swagger_page(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger-ui" in response.text


async def test_every_route_is_documented(client: AsyncTestClient[Litestar]) -> None:
    paths = (await schema(client))["paths"]
    assert {"/v1/asr/transcribe/audio", "/v1/audio/transcriptions", "/v1/models", "/healthcheck"} <= set(paths)
    for path, item in paths.items():
        for operation in item.values():
            assert operation.get("summary"), path
            assert operation.get("operationId"), path


async def test_upload_forms_are_described_for_swagger(client: AsyncTestClient[Litestar]) -> None:
    paths = (await schema(client))["paths"]
    reference = paths["/v1/asr/transcribe/audio"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert reference["required"] == ["file"]
    assert reference["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": reference["properties"]["file"]["description"],
    }
    assert reference["properties"]["process_type"]["enum"] == ["full", "chunked"]
    assert set(reference["properties"]) == {"file", "process_type", "request_id", "language"}

    openai_form = paths["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert list(openai_form["properties"])[:6] == [
        "file",
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
    ]
    assert openai_form["properties"]["response_format"]["enum"] == ["json", "text", "srt", "verbose_json", "vtt"]
    assert openai_form["properties"]["timestamp_granularities[]"]["items"]["enum"] == ["segment", "word"]


async def test_error_bodies_are_documented(client: AsyncTestClient[Litestar]) -> None:
    paths = (await schema(client))["paths"]
    reference = paths["/v1/asr/transcribe/audio"]["post"]["responses"]
    for status in ("400", "413", "415", "422", "429", "503"):
        assert status in reference
    assert "ASR-6043" in reference["429"]["description"]
    assert "ASR-6041" in reference["415"]["description"]
    openai_responses = paths["/v1/audio/transcriptions"]["post"]["responses"]
    assert {"application/json", "text/plain", "text/event-stream"} == set(openai_responses["200"]["content"])
    assert "404" in openai_responses


async def test_every_error_documented_is_in_its_route_familys_shape(client: AsyncTestClient[Litestar]) -> None:
    """No error response in Litestar's own shape ({status_code, detail, extra}), which no route answers."""
    shapes = {}
    for path, operations in (await schema(client))["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    shapes[(path, method, status)] = response["content"]["application/json"]["schema"]["$ref"]
    assert set(shapes.values()) == {"#/components/schemas/ErrorResponse", "#/components/schemas/ErrorBody"}, shapes
    assert ("/v1/models/{model_id}", "get", "404") in shapes
    assert ("/v1/models", "get", "401") in shapes


async def test_success_bodies_are_described_as_they_are_sent(client: AsyncTestClient[Litestar]) -> None:
    """A verbose_json body is also a valid json body, so "exactly one of" would refuse every verbose_json
    answer; a stream is described per event, as an SSE client hands them over (found by Schemathesis)."""
    success = (await schema(client))["paths"]["/v1/audio/transcriptions"]["post"]["responses"]["200"]["content"]
    union = success["application/json"]["schema"]
    assert "oneOf" not in union
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in union["anyOf"]} == {"TranscriptionJson", "TranscriptionVerbose"}
    event = success["text/event-stream"]["schema"]
    assert event["type"] == "object"
    assert event["required"] == ["data"]
    kinds = [part["properties"]["type"]["enum"] for part in event["properties"]["data"]["contentSchema"]["oneOf"]]
    assert kinds == [["transcript.text.delta"], ["transcript.text.done"]]
