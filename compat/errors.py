"""The error catalogue: one exception hierarchy for every route family.

Each error knows its ASR code, its HTTP status and its OpenAI ``type``; the
routes render it in their family's shape (``compat.reference.error_body`` and
``compat.openai.error_body``). Errors are raised, never returned.

Codes 6000-6044 are the reference service's. 6045-6049 are this gateway's own,
for what the reference left to its web framework (see ``docs/errors.md``).
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error a client can see.

    Args:
        message: a sentence a person can act on.
        param: the request field at fault, if one is.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    code: ClassVar[str] = "ASR-6001"
    status: ClassVar[int] = 500
    openai_type: ClassVar[str] = "server_error"
    of_an_operation: ClassVar[bool] = True  # answered by a route's operation (so shown among its responses)
    default_param: ClassVar[str | None] = None  # the field at fault when the raiser names none

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param if param is not None else self.default_param
        self.headers = headers or {}
        self.logged = False  # set once the request's failure event carries it: it is logged once

    @property
    def http_status(self) -> int:
        """The HTTP status of the response (an instance may override the class's)."""
        return self.status

    @property
    def worth_resending(self) -> bool:
        """Whether a backend piece that failed with it is sent once more."""
        return True


# --- the backend ---------------------------------------------------------------------------


class BackendDown(GatewayError):
    """Health check failed: the backend does not answer."""

    code = "ASR-6000"
    status = 500
    of_an_operation = False  # logged; /healthcheck answers the contract's own body


class BackendFailed(GatewayError):
    """The backend failed in a way it did not explain."""

    code = "ASR-6001"
    status = 500


class BackendTimeout(GatewayError):
    """The backend did not answer a piece within its timeout."""

    code = "ASR-6002"
    status = 503


class BackendUnreachable(GatewayError):
    """The backend could not be reached at all."""

    code = "ASR-6003"
    status = 503


class BackendHTTPError(GatewayError):
    """The backend answered with an HTTP error; its status is passed on."""

    code = "ASR-6004"
    status = 502

    def __init__(self, message: str, *, backend_status: int, elsewhere: bool = False, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.backend_status = backend_status
        self.elsewhere = elsewhere  # another replica may answer otherwise (a refusal can be one replica's setup)

    @property
    def http_status(self) -> int:
        """The backend's own status, when it is an error status."""
        return self.backend_status if 400 <= self.backend_status <= 599 else self.status

    @property
    def worth_resending(self) -> bool:
        """False for a refusal the same request would meet again: a 4xx (not 408/429) from the only server."""
        refusal = 400 <= self.backend_status <= 499 and self.backend_status not in (408, 429)
        return not refusal or self.elsewhere


class BackendStartFailed(GatewayError):
    """The managed vLLM process did not start."""

    code = "ASR-6010"
    status = 503
    of_an_operation = False  # logged at start-up; requests then meet the backend's state (ASR-6003)


# --- the input -----------------------------------------------------------------------------


class EmptyAudio(GatewayError):
    """Zero bytes, or audio with no samples."""

    code = "ASR-6040"
    status = 400
    openai_type = "invalid_request_error"
    default_param = "file"


class UnsupportedAudio(GatewayError):
    """Not audio, an unsupported format, or a file no decoder recognises."""

    code = "ASR-6041"
    status = 415
    openai_type = "invalid_request_error"
    default_param = "file"


class AudioTooLong(GatewayError):
    """Longer than the processing mode allows."""

    code = "ASR-6042"
    status = 400
    openai_type = "invalid_request_error"
    default_param = "file"

    def __init__(self, message: str, *, seconds: float, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.seconds = seconds  # the audio's length, or as much as was decoded before the limit stopped it


class ConcurrencyLimit(GatewayError):
    """No place freed up within the queue timeout."""

    code = "ASR-6043"
    status = 429
    openai_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_seconds)})
        self.retry_after_seconds = retry_after_seconds


class DecoderFailed(GatewayError):
    """The file looked like audio but the decoder failed part-way."""

    code = "ASR-6044"
    status = 422
    openai_type = "invalid_request_error"
    default_param = "file"


class InvalidRequest(GatewayError):
    """A missing or malformed request field (``param`` names it)."""

    code = "ASR-6045"
    status = 400
    openai_type = "invalid_request_error"

    @property
    def worth_resending(self) -> bool:
        """Never: the same request would be refused again."""
        return False


class HeadTooLarge(InvalidRequest):
    """The request's head (its line and headers) is over the server's limit."""

    status = 431
    of_an_operation = False  # answered before any route is chosen


class RequestTimedOut(InvalidRequest):
    """The client stopped sending in the middle of its request."""

    status = 408
    of_an_operation = False  # answered by the HTTP server, mid-request


class UploadTooLarge(GatewayError):
    """The upload is over the size limit."""

    code = "ASR-6046"
    status = 413
    openai_type = "invalid_request_error"


class Unauthorized(GatewayError):
    """API keys are configured and the request has none, or a wrong one."""

    code = "ASR-6047"
    status = 401
    openai_type = "invalid_request_error"


class ModelNotFound(GatewayError):
    """The OpenAI route named a model this gateway does not serve."""

    code = "ASR-6048"
    status = 404
    openai_type = "invalid_request_error"


class NoSuchRoute(GatewayError):
    """Nothing is served at this path (404), or not for this method (405, with ``Allow``)."""

    code = "ASR-6049"
    status = 404
    openai_type = "invalid_request_error"
    of_an_operation = False  # answered where no operation is

    def __init__(self, message: str, *, status: int = 404, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers=headers)
        self._status = status

    @property
    def http_status(self) -> int:
        """404 or 405."""
        return self._status


class NotSupported(InvalidRequest):
    """The backend cannot do what was asked (a language, translation, word times)."""


CATALOGUE: tuple[type[GatewayError], ...] = (
    BackendDown,
    BackendFailed,
    BackendTimeout,
    BackendUnreachable,
    BackendHTTPError,
    BackendStartFailed,
    EmptyAudio,
    UnsupportedAudio,
    AudioTooLong,
    ConcurrencyLimit,
    DecoderFailed,
    InvalidRequest,
    HeadTooLarge,
    RequestTimedOut,
    UploadTooLarge,
    Unauthorized,
    ModelNotFound,
    NoSuchRoute,
)
"""Every code of the catalogue (the OpenAPI schema shows those ``of_an_operation`` under each route)."""

PARTIAL_RESULT_CODE = "ASR-6030"
"""Not an error: the warning on a 200 whose transcript misses some pieces."""
