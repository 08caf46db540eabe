"""Settings: read once, from the environment (flags win), into one frozen value.

Every field's environment variable is its name in upper case (``port`` -> ``PORT``);
``asr-gateway serve`` has a flag for each (``--port``). Nothing else in the
gateway reads the environment (ruff's banned-API rule enforces it).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import msgspec

from compat.languages import to_code


class SettingsError(ValueError):
    """A setting has a bad value; the message names its variable."""


class StartupError(RuntimeError):
    """A setting that cannot be honoured at start-up (a port in use, a model not there).

    The message names the variable and what to do.
    """


class BackendKind(StrEnum):
    """Which engine transcribes."""

    EMBEDDED = "embedded"
    VLLM = "vllm"


class LogFormat(StrEnum):
    """How log lines look."""

    JSON = "json"
    TEXT = "text"


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of the gateway, with defaults that serve."""

    host: Annotated[str, _doc("Address the API listens on.")] = "0.0.0.0"  # noqa: S104 - a server's default
    port: Annotated[int, _doc("Port of the API.")] = 8000
    metrics_port: Annotated[int, _doc("Port of the Prometheus exposition; 0 serves /metrics on the API port.")] = 9090
    metrics_prefix: Annotated[
        str, _doc("Prefix of every metric name (halong_qwen_asr gives the reference's names).")
    ] = "asr_gateway"
    root_path: Annotated[str, _doc("Path prefix for every route, the docs and the schema (e.g. /internal/asr).")] = ""
    backend: Annotated[BackendKind, _doc("Engine: embedded (CPU, in-process) or vllm.")] = BackendKind.EMBEDDED
    embedded_model: Annotated[
        str, _doc("faster-whisper model directory or name; empty: the bundled Whisper tiny.en.")
    ] = ""
    embedded_compute_type: Annotated[str, _doc("CTranslate2 compute type of the embedded model.")] = "int8"
    embedded_workers: Annotated[
        int,
        _doc(
            "Batches the embedded model decodes at once, one per worker thread; "
            "0: one per usable core (CPU affinity, capped by a container's CPU quota)."
        ),
    ] = 0
    embedded_threads: Annotated[
        int, _doc("CPU threads of each embedded worker; 0: the cores shared among the workers.")
    ] = 0
    embedded_batch_size: Annotated[
        int, _doc("Most 30 s windows each embedded worker decodes together (memory grows with it).")
    ] = 2
    embedded_beam_size: Annotated[int, _doc("Beam width of the embedded model at temperature 0.")] = 5
    vllm_base_urls: Annotated[
        tuple[str, ...], _doc("Comma-separated base URLs of vLLM servers (http://host:8000/v1).")
    ] = ()
    vllm_model: Annotated[
        str, _doc("Model served by vLLM; with no VLLM_BASE_URLS the gateway starts vLLM with it.")
    ] = ""
    vllm_api_key: Annotated[str, _doc("Bearer key for vLLM.")] = ""
    vllm_served_model_name: Annotated[
        str,
        _doc(
            "Model id vLLM serves; empty: managed mode uses VLLM_MODEL, external mode the first id vLLM lists "
            "(VLLM_MODEL if it is listed)."
        ),
    ] = ""
    vllm_python: Annotated[
        str, _doc("Interpreter that runs vLLM in managed mode (a venv with vLLM); empty: the gateway's own.")
    ] = ""
    vllm_managed_port: Annotated[
        int, _doc("Port of the managed vLLM on 127.0.0.1; 0: a free one. (Not VLLM_PORT: vLLM reads that itself.)")
    ] = 0
    vllm_extra_args: Annotated[
        str, _doc("Extra arguments of the managed vLLM, shell-quoted (e.g. --max-model-len 8192).")
    ] = ""
    vllm_startup_timeout_seconds: Annotated[
        float, _doc("Longest wait for a managed vLLM to answer /health before ASR-6010 and a restart.")
    ] = 900.0
    vllm_health_interval_seconds: Annotated[float, _doc("Seconds between /health probes of each vLLM replica.")] = 2.0
    vllm_hang_seconds: Annotated[
        float,
        _doc(
            "Longest a managed vLLM that has served may answer neither /health nor a request while its process "
            "runs; then it is killed and started again. 0: never."
        ),
    ] = 60.0
    vllm_pieces_per_replica: Annotated[int, _doc("Most pieces in flight to each vLLM replica.")] = 64
    vllm_media_dir: Annotated[
        str,
        _doc(
            "A directory vLLM on the same host may read (its --allowed-local-media-path): pieces go there as "
            "WAV files, sent as file:// URLs, instead of base64 in the JSON. Empty: base64 (managed mode: a private "
            "directory, always)."
        ),
    ] = ""
    default_process_type: Annotated[str, _doc("Mode when a request names none: full or chunked.")] = "full"
    default_language: Annotated[
        str, _doc("Language when a request names none (ISO 639-1 code or English name); empty: detect.")
    ] = ""
    chunk_seconds: Annotated[float, _doc("Longest piece in chunked mode, in seconds (1-30).")] = 30.0
    max_chunked_seconds: Annotated[float, _doc("Longest audio in chunked mode, in seconds.")] = 1800.0
    max_full_seconds: Annotated[float, _doc("Longest audio in full mode, in seconds.")] = 600.0
    max_concurrent_chunked: Annotated[int, _doc("Chunked requests processed at once.")] = 25
    max_concurrent_full: Annotated[int, _doc("Full requests processed at once.")] = 5
    queue_timeout_seconds: Annotated[float, _doc("Longest wait for a place before ASR-6043.")] = 10.0
    chunk_timeout_seconds: Annotated[float, _doc("Backend timeout of one piece in chunked mode.")] = 30.0
    full_timeout_seconds: Annotated[float, _doc("Backend timeout of a full-mode request.")] = 300.0
    max_upload_mb: Annotated[float, _doc("Largest upload, in MB (10^6 bytes).")] = 500.0
    model_aliases: Annotated[
        tuple[str, ...], _doc("Extra model ids accepted on the OpenAI route (comma-separated).")
    ] = ("whisper-1",)
    api_keys: Annotated[tuple[str, ...], _doc("Accepted bearer keys (comma-separated); empty: no auth.")] = ()
    cors_allow_origins: Annotated[
        tuple[str, ...],
        _doc(
            "Web origins whose pages may call the API from a browser, e.g. the OpenAI JavaScript SDK "
            "(comma-separated, like https://app.example.com or https://*.example.com; * for any); empty: no CORS "
            "headers, so a browser lets no other origin read an answer."
        ),
    ] = ()
    keep_alive_seconds: Annotated[
        int,
        _doc(
            "Seconds an idle client connection is kept open. Longer than clients keep theirs (httpx and Node: 5 s), "
            "so a client never sends on a connection the server is closing at that moment."
        ),
    ] = 75
    read_timeout_seconds: Annotated[
        int,
        _doc(
            "Seconds a client may send nothing while it owes the server part of a request (its headers or its "
            "body) before the connection is closed, with a 408 (nginx's client_header_timeout and "
            "client_body_timeout)."
        ),
    ] = 60
    log_level: Annotated[str, _doc("Logging level.")] = "INFO"
    log_format: Annotated[LogFormat, _doc("Log lines as json or text.")] = LogFormat.JSON

    def __post_init__(self) -> None:
        _check(self)

    @property
    def default_language_code(self) -> str | None:
        """``default_language`` as an ISO 639-1 code; None: detect."""
        return to_code(self.default_language) if self.default_language else None

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1_000_000)


def _check(s: Settings) -> None:
    def fail(name: str, why: str) -> None:
        raise SettingsError(f"{name.upper()}: {why}")

    for field in msgspec.structs.fields(s):  # nan passes every comparison below, and inf overflows a limit
        value = getattr(s, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            fail(field.name, "must be a finite number")
    for name in ("port", "metrics_port"):
        if not 0 <= getattr(s, name) <= 65535:
            fail(name, "must be a port number (0-65535)")
    if s.port == 0:
        fail("port", "must not be 0")
    if s.metrics_port == s.port:  # else the metrics take the port and the API fails once the model has loaded
        fail("metrics_port", f"must differ from PORT ({s.port}); 0 serves /metrics on the API port")
    for name in (
        "chunk_seconds",
        "max_chunked_seconds",
        "max_full_seconds",
        "max_upload_mb",
        "chunk_timeout_seconds",
        "full_timeout_seconds",
    ):
        if getattr(s, name) <= 0:
            fail(name, "must be greater than 0")
    for name in ("queue_timeout_seconds", "vllm_hang_seconds"):
        if getattr(s, name) < 0:
            fail(name, "must not be negative")
    for name in (
        "max_concurrent_chunked",
        "max_concurrent_full",
        "embedded_batch_size",
        "embedded_beam_size",
        "vllm_pieces_per_replica",
        "keep_alive_seconds",
        "read_timeout_seconds",
    ):
        if getattr(s, name) < 1:
            fail(name, "must be at least 1")
    for name in ("embedded_threads", "embedded_workers"):
        if getattr(s, name) < 0:
            fail(name, "must not be negative")
    if not 1 <= s.chunk_seconds <= 30:
        fail("chunk_seconds", "must be from 1 to 30 (the models' window)")
    if s.default_language and to_code(s.default_language) is None:
        fail("default_language", f"{s.default_language!r} is not a known ISO 639-1 code or language name (e.g. en)")
    if s.default_process_type not in ("full", "chunked"):
        fail("default_process_type", "must be full or chunked")
    if s.root_path and (not s.root_path.startswith("/") or s.root_path.endswith("/")):
        fail("root_path", "must start with / and not end with one (e.g. /internal/asr)")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        fail("log_level", "must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if s.backend is BackendKind.VLLM and not (s.vllm_base_urls or s.vllm_model):
        fail("vllm_model", "BACKEND=vllm needs VLLM_BASE_URLS or VLLM_MODEL")
    for url in s.vllm_base_urls:
        if not url.startswith(("http://", "https://")):
            fail("vllm_base_urls", f"{url!r} is not an http(s) URL (e.g. http://host:8000/v1)")
    for origin in s.cors_allow_origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            fail(
                "cors_allow_origins",
                f"{origin!r} is not an origin: scheme and host, no path (e.g. https://app.example.com)",
            )
    if not 0 <= s.vllm_managed_port <= 65535:
        fail("vllm_managed_port", "must be a port number (0-65535)")
    for name in ("vllm_startup_timeout_seconds", "vllm_health_interval_seconds"):
        if getattr(s, name) <= 0:
            fail(name, "must be greater than 0")
    import shlex  # only here: the rest of the module has no use for it

    try:
        shlex.split(s.vllm_extra_args)
    except ValueError as error:
        fail("vllm_extra_args", f"cannot be split like a shell command line: {error}")


def field_docs() -> dict[str, str]:
    """Each setting's description, by field name (for --help and the docs)."""
    hints = get_type_hints(Settings, include_extras=True)
    out = {}
    for field in msgspec.structs.fields(Settings):
        meta = next((m for m in get_args(hints[field.name]) if isinstance(m, msgspec.Meta)), None)
        out[field.name] = meta.description if meta and meta.description else ""
    return out


def _parse(name: str, raw: str, annotation: Any) -> Any:
    base = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    if get_origin(base) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw.strip()


def from_env(env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from environment variables, then ``overrides`` (command-line flags) on top.

    Raises:
        SettingsError: a value is malformed or out of range; the message names the variable.
    """
    env = os.environ if env is None else env
    hints = {f.name: f for f in msgspec.structs.fields(Settings)}
    raw: dict[str, Any] = {}
    for name, field in hints.items():
        value = env.get(name.upper())
        if value is not None:
            raw[name] = _parse(name, value, field.type)
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = _parse(name, value, hints[name].type) if isinstance(value, str) else value
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as error:
        message, _, where = str(error).partition(" - at `$.")
        if not where:  # raised by _check, already naming its variable
            raise SettingsError(message) from None
        name = where.rstrip("`")
        choices = _choices(hints[name].type) if name in hints else ()
        allowed = f"; one of: {', '.join(choices)}" if choices else ""
        raise SettingsError(f"{name.upper()}: {message} (value: {raw.get(name)!r}{allowed})") from None


def _choices(annotation: Any) -> tuple[str, ...]:
    """The values a setting of this type takes, when it is a closed set (an enum)."""
    base = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    if isinstance(base, type) and issubclass(base, StrEnum):
        return tuple(member.value for member in base)
    return ()
