"""The Dockerfile's recipe, followed without a container engine (none runs on CI's machines).

The image copies a few paths, installs them with ``pip install .`` (a wheel, not the editable
install the other tests use) and runs the wheel's ``asr-gateway`` entry point, with the image's
environment, from a directory that holds no checkout; its HEALTHCHECK command says whether it is
up. These tests do the same from the Dockerfile's own lines, so a module or data file the wheel
leaves out, or a start that reads the checkout, fails here and not first in a user's container.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.corpus import clip
from tests.server import live_server
from tests.wer import wer

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Recipe:
    """What the Dockerfile says: the paths it copies, its environment, entry point and health check."""

    copied: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    healthcheck: str = ""
    exposed: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


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
                recipe.healthcheck = rest.split(" CMD ", 1)[1].strip()
            case "EXPOSE":
                recipe.exposed += rest.split()
            case "RUN":
                recipe.runs.append(rest)
    return recipe


@dataclass
class Installed:
    """The wheel built from the copied paths, unpacked as ``pip install .`` would place it."""

    recipe: Recipe
    wheel: Path
    site: Path
    scripts: dict[str, str]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    recipe = read_recipe(ROOT / "Dockerfile")
    assert any("pip install" in run and " ." in run for run in recipe.runs), "the image installs the copied project"
    work = tmp_path_factory.mktemp("image")
    context = work / "app"
    context.mkdir()
    for source in recipe.copied:  # the build context: only what the Dockerfile copies
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, context / source)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", "dist", "./app"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (work / "dist").glob("asr_gateway-*.whl")
    site = work / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    (dist_info,) = site.glob("asr_gateway-*.dist-info")
    entry_points = configparser.ConfigParser()
    entry_points.read(dist_info / "entry_points.txt")
    return Installed(recipe, wheel, site, dict(entry_points["console_scripts"]))


def image_env(installed: Installed, home: Path) -> dict[str, str]:
    """The image's environment over this machine's: the wheel on the path, ``python`` this interpreter."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    env.pop("PYTHONPATH", None)
    bin_dir = home / "bin"  # the image's `python` (its HEALTHCHECK calls it by that name)
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    path = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **installed.recipe.env, "PYTHONPATH": str(installed.site), "HOME": str(home), "PATH": path}


def test_the_wheel_holds_the_service_and_nothing_of_the_checkout(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    packages = {name.split("/", 1)[0] for name in names if not name.startswith("asr_gateway-")}
    assert packages == {"gateway", "compat"}, packages
    modules = [path for folder in ("gateway", "compat") for path in (ROOT / folder).rglob("*.py")]
    sources = {path.relative_to(ROOT).as_posix() for path in modules}
    assert sources <= set(names), sorted(sources - set(names))  # every module, subpackages included
    assert installed.scripts["asr-gateway"] == "gateway.cli:main"
    assert installed.recipe.entrypoint[:2] == ["asr-gateway", "serve"]


def test_the_image_recipe_serves_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    """The entry point runs from an empty directory with the image's environment, and answers on both routes."""
    home = tmp_path / "home"
    home.mkdir()
    cwd = tmp_path / "app"
    cwd.mkdir()
    env = image_env(installed, home)
    where = subprocess.run(
        [sys.executable, "-c", "import gateway, compat; print(gateway.__file__); print(compat.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for module_file in where.stdout.split():
        assert Path(module_file).is_relative_to(installed.site), where.stdout  # not the checkout's copy

    module, _, function = installed.scripts[installed.recipe.entrypoint[0]].partition(":")
    argv = [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]
    argv += installed.recipe.entrypoint[1:]
    assert "8000/tcp" in installed.recipe.exposed or "8000" in installed.recipe.exposed
    assert "127.0.0.1:8000" in installed.recipe.healthcheck
    with live_server(tmp_path / "image.log", env, command=argv) as server:  # on a free port: see the health check
        port = server.base_url.rsplit(":", 1)[1]
        healthcheck = installed.recipe.healthcheck.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        healthy = subprocess.run(healthcheck, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=30)  # noqa: S602 - the Dockerfile's own shell-form command
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr

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
            for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):  # served from the wheel's dependency, not a CDN
                assert f"/docs/assets/{asset}" in docs.text
                assert client.get(f"/docs/assets/{asset}").status_code == 200
    assert not any(cwd.iterdir()), sorted(cwd.iterdir())  # nothing written where it runs
