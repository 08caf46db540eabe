"""``asr-gateway serve``: start the server; every setting has a flag (flags win over the environment).

``asr-gateway healthcheck`` asks a running server's ``/healthcheck`` where the same settings
put it (``PORT``, ``ROOT_PATH``, ``HOST``): the image's HEALTHCHECK.
"""

from __future__ import annotations

import argparse
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

import msgspec

from gateway import __version__
from gateway.settings import Settings, SettingsError, StartupError, field_docs, from_env

STARTUP_FAILURE = 3  # uvicorn's exit status when the app cannot start; the same for what fails before it


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr-gateway", description="OpenAI-compatible speech-to-text gateway.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the server", description="Start the server.")
    check = commands.add_parser(
        "healthcheck",
        help="ask a running server whether it is healthy (exit 0) or not (exit 1)",
        description="GET /healthcheck of the server these settings start (HOST, PORT, ROOT_PATH); exit 0 on 200.",
    )
    docs = field_docs()
    for command in (serve, check):
        for field in msgspec.structs.fields(Settings):
            flag = "--" + field.name.replace("_", "-")
            default = field.default if not isinstance(field.default, tuple) else ",".join(field.default)
            command.add_argument(
                flag,
                dest=field.name,
                default=None,
                metavar=field.name.upper(),
                help=f"{docs[field.name]} [env {field.name.upper()}, default: {default!s}]",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, read the settings, run the server."""
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    try:
        settings = from_env(overrides=overrides)
    except SettingsError as error:
        print(f"asr-gateway: bad setting: {error}", file=sys.stderr)
        return 2
    if args.command == "healthcheck":
        return healthcheck(settings)
    try:
        serve(settings)
    except StartupError as error:
        from gateway.app import reported

        reported(error)
        return STARTUP_FAILURE
    return 0


def serve(settings: Settings) -> None:
    """Run the app under uvicorn until interrupted."""
    import uvicorn

    from gateway.allocator import share_one_arena
    from gateway.app import create_app
    from gateway.http_protocol import guarded_protocol
    from gateway.logs import configure_logging

    share_one_arena()  # before any worker thread allocates
    configure_logging(settings.log_level, settings.log_format)
    check_port_free(settings.host, settings.port)  # before the model loads, not after
    if settings.metrics_port:  # and with one line, not the lifespan's traceback
        way_out = "or 0 to serve /metrics on the API port"
        check_port_free(settings.host, settings.metrics_port, setting="METRICS_PORT", way_out=way_out)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=settings.keep_alive_seconds,  # uvicorn's own 5 s races clients' 5 s
        http=guarded_protocol(settings.read_timeout_seconds),
        timeout_graceful_shutdown=10,
    )


def check_port_free(host: str, port: int, *, setting: str = "PORT", way_out: str = "or another address (HOST)") -> None:
    """Refuse at once a port that cannot be listened on (uvicorn would say so after the model loads).

    Raises:
        StartupError: naming the setting (and HOST) and the system's reason.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StartupError(
                f"{setting}={port}: cannot listen on {host}:{port} ({error.strerror}). "
                f"Choose a free port ({setting}), {way_out}."
            ) from None


HEALTHCHECK_TIMEOUT = 4.0  # under the image's HEALTHCHECK --timeout


def healthcheck_url(settings: Settings) -> str:
    """Where the server these settings start answers ``/healthcheck`` (a wildcard address: loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{settings.root_path}/healthcheck"


def healthcheck(settings: Settings) -> int:
    """0 when the server answers its ``/healthcheck`` with 200, else 1 (with the reason on stderr)."""
    url = healthcheck_url(settings)
    try:
        # no proxy: Docker hands its client's HTTP_PROXY to containers, and a proxy cannot reach our loopback
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=HEALTHCHECK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"asr-gateway: {url}: {getattr(error, 'reason', None) or error}", file=sys.stderr)
        return 1
    print(f"{url}: {status}")
    return 0 if status == 200 else 1
