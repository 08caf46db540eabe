"""Node, npm and Chromium for the tests that drive real JavaScript clients and a real browser.

Outside CI a missing tool skips the test with a loud reason; in CI (``CI=true``) it fails, because
``scripts/test.sh`` installs them. npm dependencies are installed with ``npm ci`` from the committed
lockfile when ``node_modules`` is missing or older than the lockfile (the same rule as scripts/test.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
NODE_MAJOR = 20  # the openai package and playwright-core need Node 20 or later


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip loudly outside CI; fail in CI, where scripts/test.sh must have installed everything."""
    message = f"{reason} (run the README's test command, bash scripts/test.sh, which installs it)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        unavailable(f"{tool} is not installed")
        raise AssertionError  # unreachable: skip and fail raise
    return path


def find_node() -> str:
    """Node 20 or later."""
    path = require("node")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") else 0
    if major < NODE_MAJOR:
        unavailable(f"node {version or '(no version)'} at {path} is too old: the examples need Node {NODE_MAJOR}+")
    return path


def chromium() -> str:
    """Debian's Chromium (playwright's own browser downloads are not used)."""
    found = next((p for p in CHROMIUM_CANDIDATES if os.access(p, os.X_OK)), None) or shutil.which("chromium")
    if found is None:
        unavailable("chromium is not installed (Debian package `chromium`)")
        raise AssertionError
    return found


def npm_deps_stale(project: Path) -> bool:
    """True when ``npm ci`` must run: no node_modules, or the lockfile changed since the last install."""
    installed = project / "node_modules" / ".package-lock.json"  # npm writes it on every install
    lockfile = project / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime


def ensure_npm_deps(project: Path) -> None:
    """Install ``project``'s npm dependencies from its lockfile unless they are already there."""
    find_node()
    npm = require("npm")
    if not npm_deps_stale(project):
        return
    result = subprocess.run(
        # no install scripts: none is needed (playwright-core downloads nothing; Debian's Chromium is used)
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(project)],
        env={**os.environ, "SCARF_ANALYTICS": "false"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        unavailable(f"npm ci in {project.relative_to(ROOT)} failed:\n{result.stdout}\n{result.stderr}")
