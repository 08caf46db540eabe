"""The Dockerfile's recipe, followed without a container engine (none runs on CI's machines).

The image copies a few paths, installs them with ``pip install .`` (a wheel and its declared
dependencies, not the editable install with test extras the other tests use) and runs the
``asr-gateway`` entry point as an unprivileged user, with the image's environment; its HEALTHCHECK
command says whether it is up. These tests do the same from the Dockerfile's own lines: a wheel of
only the copied paths, installed into a fresh virtual environment of the system's Python (the image's
is Debian's Python 3.11 too), run as the image's uid from an empty directory. A module or data file
the wheel leaves out, a runtime import of a test-only package, or a start that writes where that user
cannot, fails here and not first in a user's container.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.corpus import clip
from tests.server import live_server
from tests.wer import wer

ROOT = Path(__file__).resolve().parents[1]
# An interpreter that another uid may run (a pyenv Python under /root is not one); else this one, as this user.
SYSTEM_PYTHONS = (Path("/usr/local/bin/python3"), Path("/usr/bin/python3"))


@dataclass
class Recipe:
    """What the Dockerfile says: the paths it copies, its environment, user, entry point and health check."""

    copied: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    user: str = ""


def read_recipe(dockerfile: Path) -> Recipe:
    """The instructions this test follows, from the Dockerfile (continuation lines joined)."""
    recipe = Recipe()
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        match instruction.upper():
            case "COPY":
                *sources, _destination = shlex.split(rest)
                recipe.copied += sources
            case "ENV":
                recipe.env.update(pair.split("=", 1) for pair in shlex.split(rest))  # type: ignore[misc]
            case "ENTRYPOINT":
                recipe.entrypoint = json.loads(rest)
            case "HEALTHCHECK":
                recipe.healthcheck = json.loads(rest.split(" CMD ", 1)[1])  # exec form: no shell in the way
            case "EXPOSE":
                recipe.exposed += rest.split()
            case "RUN":
                recipe.runs.append(rest)
            case "USER":
                recipe.user = rest.strip()
    return recipe


def image_uid(recipe: Recipe) -> int:
    """The uid the image's user is made with (``useradd --uid N <user>``)."""
    for run in recipe.runs:
        words = shlex.split(run.replace("&&", " "))
        if "useradd" in words and recipe.user in words:
            return int(words[words.index("--uid") + 1])
    raise AssertionError(f"no useradd --uid for USER {recipe.user!r} in the Dockerfile")


@dataclass
class Image:
    """The wheel built from the copied paths, installed as ``pip install .`` installs it."""

    recipe: Recipe
    wheel: Path
    root: Path  # everything below: readable by the image's user
    venv: Path
    uid: int | None  # the image's uid, when this test can run as it (root, with a system Python)


def run(argv: list[str], cwd: Path | None = None) -> None:
    """Run a step of the recipe; it must succeed."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    recipe = read_recipe(ROOT / "Dockerfile")
    assert any("pip install" in step and " ." in step for step in recipe.runs), "the image installs the project"
    root = Path(tempfile.mkdtemp(prefix="asr-image-"))  # not under pytest's 0700 folders: the image's user reads it
    try:
        root.chmod(0o755)
        context = root / "app"
        context.mkdir()
        for source in recipe.copied:  # the build context: only what the Dockerfile copies
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, context / source)
        quiet = ["--disable-pip-version-check", "-q"]
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", *quiet, "-w", "dist", "./app"], cwd=root)
        (wheel,) = (root / "dist").glob("asr_gateway-*.whl")
        system = next((p for p in SYSTEM_PYTHONS if p.exists()), None)
        venv = root / "venv"
        run([str(system or sys.executable), "-m", "venv", str(venv)])
        run([str(venv / "bin" / "python"), "-m", "pip", "install", *quiet, str(wheel)])  # its dependencies too
        run([str(venv / "bin" / "python"), "-m", "pip", "check"])
        uid = image_uid(recipe) if os.geteuid() == 0 and system is not None and shutil.which("setpriv") else None
        yield Image(recipe, wheel, root, venv, uid)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_wheel_holds_the_service_and_nothing_of_the_checkout(image: Image) -> None:
    names = zipfile.ZipFile(image.wheel).namelist()
    packages = {name.split("/", 1)[0] for name in names if not name.startswith("asr_gateway-")}
    assert packages == {"gateway", "compat"}, packages
    modules = [path for folder in ("gateway", "compat") for path in (ROOT / folder).rglob("*.py")]
    sources = {path.relative_to(ROOT).as_posix() for path in modules}
    assert sources <= set(names), sorted(sources - set(names))  # every module, subpackages included
    assert image.recipe.entrypoint[:2] == ["asr-gateway", "serve"]
    assert (image.venv / "bin" / "asr-gateway").exists()


def test_the_image_recipe_serves_as_its_user(image: Image) -> None:
    """The entry point, run as the image runs it, answers on both routes and passes the HEALTHCHECK."""
    if image.uid is None:
        # CI runs as root on Debian: there the image's user is always checked
        assert os.environ.get("CI", "").lower() in ("", "0", "false", "no"), "CI must run the image as its user"
        print(f"!!! not root or no system Python: the server runs as uid {os.geteuid()}, not the image's user")
    home = image.root / "home"  # useradd --create-home
    workdir = image.root / "workdir"  # the image's WORKDIR holds only root's files: nothing writable
    for folder in (home, workdir):
        folder.mkdir()
    if image.uid is not None:
        os.chown(home, image.uid, image.uid)
    path = f"{image.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"  # the image's `python` comes first
    env = {**image.recipe.env, "PATH": path, "HOME": str(home), "LANG": "C.UTF-8"}
    as_user = [] if image.uid is None else ["setpriv", f"--reuid={image.uid}", f"--regid={image.uid}", "--clear-groups"]
    command = [*as_user, str(image.venv / "bin" / image.recipe.entrypoint[0]), *image.recipe.entrypoint[1:]]
    assert "8000" in " ".join(image.recipe.exposed)
    healthcheck = [*as_user, str(image.venv / "bin" / image.recipe.healthcheck[0]), *image.recipe.healthcheck[1:]]

    with live_server(image.root / "image.log", env, command=command, base_env={}, cwd=workdir) as server:
        port = str(server.port)  # a free port, given as PORT: the health check follows it
        env_then = {**env, "PORT": port}
        healthy = subprocess.run(healthcheck, env=env_then, cwd=workdir, capture_output=True, text=True, timeout=30)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        if image.uid is not None:  # setpriv became the server: its uid is the image's
            status = Path(f"/proc/{server.process.pid}/status").read_text().splitlines()
            real_uid = next(line.split()[1] for line in status if line.startswith("Uid:"))
            assert int(real_uid) == image.uid

        speech = clip("ss_0930")
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            for route, fields in (
                ("/v1/audio/transcriptions", {"model": "whisper-1"}),
                ("/v1/asr/transcribe/audio", {"process_type": "chunked"}),
            ):
                answer = client.post(route, files={"file": (speech.path.name, speech.path.read_bytes())}, data=fields)
                assert answer.status_code == 200, answer.text
                assert wer(speech.reference, answer.json()["text"]) <= 0.1, answer.text
            docs = client.get("/docs")
            assert docs.status_code == 200
            for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):  # from the wheel's dependency, not a CDN
                assert f"/docs/assets/{asset}" in docs.text
                assert client.get(f"/docs/assets/{asset}").status_code == 200
        log = server.log()
    assert "Traceback" not in log, log[-4000:]
    gone = subprocess.run(healthcheck, env=env_then, cwd=workdir, capture_output=True, text=True, timeout=30)
    assert gone.returncode == 1, gone.stdout + gone.stderr  # the server stopped: unhealthy
