#!/usr/bin/env bash
# Install the gateway into .venv and start it on the embedded CPU engine (Whisper tiny.en, bundled: no download).
# Any setting can follow as a flag (asr-gateway serve --help), or be given in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  # Debian and Ubuntu ship venv's pip bootstrap apart from Python itself
  if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "== installing python3-venv"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  "$PYTHON" -m venv .venv
fi
# Installed once, and again only when the project's files changed since: a restart needs no package index.
STAMP=.venv/.asr-gateway-installed
if [ ! -e "$STAMP" ] || [ -n "$(find pyproject.toml gateway compat -newer "$STAMP" -print -quit)" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check .
  touch "$STAMP"
fi
# The bundled model needs no hub; a managed vLLM (BACKEND=vllm) inherits this environment and downloads its model.
if [ "${BACKEND:-embedded}" != vllm ] && [[ " $* " != *" --backend vllm "* && " $* " != *" --backend=vllm "* ]]; then
  export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
fi
exec .venv/bin/asr-gateway serve "$@"
