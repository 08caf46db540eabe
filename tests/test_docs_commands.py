"""The deployment commands the docs give, checked against what runs them.

No GPU is lent to these machines, so the GPU commands in README.md and docs/vllm.md cannot be run
here. What can be checked is checked: every ``vllm serve`` command, and the command the gateway would
run for the docs' managed-mode settings, parses with the argument parser of the vLLM the tests run (a
misspelt or removed flag fails), and every ``NAME=value ... asr-gateway serve`` line names only settings
the gateway reads.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import msgspec
import pytest

from gateway.backends.factory import managed_config
from gateway.settings import Settings, from_env

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "docs" / "vllm.md", ROOT / "docs" / "settings.md")
SETTINGS = {field.name.upper() for field in msgspec.structs.fields(Settings)}

# Run in vLLM's environment: parse each command's arguments, report the ones vLLM refuses.
PARSE_ALL = """
import contextlib, io, json, sys
try:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
except ImportError:  # older releases
    from vllm.entrypoints.openai.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
refused = {}
for argv in json.loads(sys.stdin.read()):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(argv)
    except SystemExit:
        refused[" ".join(argv)] = err.getvalue().strip().splitlines()[-1]
print(json.dumps(refused))
"""


def code_lines(path: Path) -> list[str]:
    """The lines of the file's fenced code blocks, continuation lines joined."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)
    return [line.strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def vllm_commands() -> list[list[str]]:
    """Every ``vllm serve`` command in the docs, as its arguments after ``serve`` (a trailing ``...`` dropped)."""
    commands = []
    for path in DOCS:
        for line in code_lines(path):
            if line.startswith("vllm serve "):
                argv = shlex.split(line, comments=True)[2:]
                commands.append([word for word in argv if word != "..."])
    return commands


def gateway_commands() -> dict[str, dict[str, str]]:
    """The variables set before ``asr-gateway serve`` (or ``bash scripts/serve.sh``) in the docs' commands, by line."""
    named = {}
    for path in DOCS:
        for line in code_lines(path):
            words = shlex.split(line, comments=True)
            starts = [words.index(word) for word in ("asr-gateway", "bash") if word in words]
            if "asr-gateway" in words or "scripts/serve.sh" in words:
                before = words[: min(starts)]
                named[line] = dict(word.split("=", 1) for word in before if re.fullmatch(r"[A-Z_]+=.*", word))
    return named


def managed_commands() -> list[list[str]]:
    """The vLLM command line the gateway would run for each managed-mode command of the docs."""
    commands = []
    for env in gateway_commands().values():
        if env.get("BACKEND") == "vllm" and "VLLM_MODEL" in env and "VLLM_BASE_URLS" not in env:
            command = managed_config(from_env(env, {})).command()
            assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"], command
            commands.append(command[3:])
    return commands


def test_the_docs_give_gpu_commands_for_both_sizes() -> None:
    models = {argv[0] for argv in vllm_commands()}
    assert {"Qwen/Qwen3-ASR-1.7B", "Qwen/Qwen3-ASR-0.6B"} <= models, models


def test_gateway_commands_name_only_real_settings() -> None:
    named = {line: set(env) for line, env in gateway_commands().items()}
    assert any({"BACKEND", "VLLM_BASE_URLS"} <= names for names in named.values()), named
    assert len(managed_commands()) >= 1  # the managed mode is shown too
    unknown = {line: sorted(names - SETTINGS) for line, names in named.items() if names - SETTINGS}
    assert unknown == {}


def test_managed_commands_name_a_python_with_vllm() -> None:
    """The gateway's own environment (``scripts/serve.sh``'s .venv, the image) has no vLLM to run."""
    managed = [
        line
        for line, env in gateway_commands().items()
        if env.get("BACKEND") == "vllm" and "VLLM_MODEL" in env and "VLLM_BASE_URLS" not in env
    ]
    assert any("scripts/serve.sh" in line for line in managed), managed  # README's, through the serve script
    assert [line for line in managed if "VLLM_PYTHON=" not in line] == []


@pytest.mark.vllm
def test_vllm_accepts_every_flag_of_the_docs_commands(vllm_python: Path) -> None:
    commands = vllm_commands() + managed_commands()
    misspelt = [commands[0][0], "--gpu-memory-utilisation", "0.9"]  # the check can fail
    parsed = subprocess.run(
        [str(vllm_python), "-c", PARSE_ALL],
        input=json.dumps([*commands, misspelt]),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    refused = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert list(refused) == [" ".join(misspelt)], refused
    assert "--gpu-memory-utilisation" in refused[" ".join(misspelt)]
