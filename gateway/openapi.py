"""The OpenAPI description of the multipart routes, built from the same field table the parsers read.

The routes read their form themselves (so that every bad field gets the route
family's error shape), so Litestar cannot infer their request bodies; an
``Operation`` subclass per route sets the body from ``compat``'s ``FormField``s,
which is what lets a person upload a file from the Swagger page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from compat.errors import CATALOGUE, GatewayError
from compat.forms import FormField


def _field_schema(field: FormField) -> Schema:
    if field.kind == "file":
        return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description=field.description)
    if field.kind == "array":
        return Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.STRING, enum=list(field.choices) or None),
            description=field.description,
            examples=[[]],  # Swagger's "Try it out" pre-fills a form from its example: nothing chosen
        )
    kind = {"string": OpenAPIType.STRING, "number": OpenAPIType.NUMBER, "boolean": OpenAPIType.BOOLEAN}[field.kind]
    return Schema(
        type=kind,
        enum=list(field.choices) or None,
        default=field.default,
        description=field.description,
        # Swagger's "Try it out" fills a field that has no default with its example ("string" if none) and
        # sends it; an empty example leaves it empty (sent as "", which the parsers read as absent)
        examples=None if field.default is not None else [""],
    )


def _string(**fields: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, **fields)


def stream_event_schema(description: str) -> Schema:
    """One server-sent event of a transcription stream (its ``data``: a delta, or the final done event).

    Described per event, as OpenAPI 3.2 describes ``text/event-stream``; a plain string would not
    match what a client's SSE parser hands over.
    """
    usage = Schema(
        type=OpenAPIType.OBJECT,
        properties={"seconds": Schema(type=OpenAPIType.INTEGER), "type": _string(enum=["duration"])},
    )
    delta = Schema(
        type=OpenAPIType.OBJECT,
        properties={"type": _string(enum=["transcript.text.delta"]), "delta": _string()},
        required=["type", "delta"],
    )
    done = Schema(
        type=OpenAPIType.OBJECT,
        properties={"type": _string(enum=["transcript.text.done"]), "text": _string(), "usage": usage},
        required=["type", "text"],
    )
    return Schema(
        type=OpenAPIType.OBJECT,
        description=description,
        properties={
            "data": _string(content_media_type="application/json", content_schema=Schema(one_of=[delta, done])),
            "event": _string(),
            "id": _string(),
            "retry": Schema(type=OpenAPIType.INTEGER),
        },
        required=["data"],
    )


@dataclass
class NoValidationOperation(Operation):
    """An operation whose parameters cannot fail validation (a ``{model_id:path}`` is any string).

    Litestar lists a 400 for any operation with parameters, in its own ``{status_code, detail, extra}``
    shape, which no route of the gateway answers.
    """

    def __post_init__(self) -> None:
        if self.responses:
            self.responses.pop("400", None)


def multipart_operation(
    fields: tuple[FormField, ...], *, extra_success_media: dict[str, str | Schema] | None = None
) -> type[Operation]:
    """An ``Operation`` class whose request body is the multipart form ``fields``.

    Args:
        fields: the route's form, as its parser reads it.
        extra_success_media: more 200 media types (media type -> its schema, or a description of a
            plain-text body), e.g. text/plain.
    """
    body = RequestBody(
        required=True,
        content={
            "multipart/form-data": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    properties={f.name: _field_schema(f) for f in fields},
                    required=[f.name for f in fields if f.required],
                )
            )
        },
    )

    @dataclass
    class MultipartOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body
            success = (self.responses or {}).get("200")
            content = getattr(success, "content", None)
            if content is not None:
                union = getattr(content.get("application/json"), "schema", None)
                if isinstance(union, Schema) and union.one_of:
                    # Litestar writes a union as oneOf ("exactly one"), but a verbose_json body is also a
                    # valid json body (it has text and usage): anyOf is what holds
                    union.any_of, union.one_of = union.one_of, None
                for media_type, described in (extra_success_media or {}).items():
                    schema = described if isinstance(described, Schema) else _string(description=described)
                    content[media_type] = OpenAPIMediaType(schema=schema)

    return MultipartOperation


def error_responses(container: Any, *codes: int) -> dict[int, ResponseSpec]:
    """Error responses for ``/docs``: each status with the catalogue codes that give it."""
    out = {}
    for status in codes:
        meanings = [_meaning(e) for e in CATALOGUE if e.status == status and e.of_an_operation]
        out[status] = ResponseSpec(
            data_container=container,
            description="; ".join(meanings) or "error",
            generate_examples=False,
        )
    return out


def _meaning(error: type[GatewayError]) -> str:
    doc = (error.__doc__ or "").strip().splitlines()[0].rstrip(".")
    return f"{error.code}: {doc}"
