"""A managed vLLM's guard: the child gets SIGTERM when the gateway dies, however it dies.

Plain Python processes stand in for the gateway and for vLLM here (the guard does not know
the difference); ``tests/test_vllm_managed.py`` kills a gateway running a real vLLM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.backends.vllm.orphan_guard import guarded

# a gateway: starts its guarded child, says the child's pid, waits to be killed
GATEWAY = """
import subprocess, sys, time
from gateway.backends.vllm.orphan_guard import guarded
child = subprocess.Popen(guarded([sys.executable, "-c", sys.argv[1]]), start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""
# vLLM: says it got SIGTERM (as vLLM shuts down on it), else sleeps
VLLM = """
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, lambda *_: (Path(sys.argv[1]).write_text("SIGTERM"), sys.exit(0)))
Path(sys.argv[1]).write_text("serving")
time.sleep(120)
"""


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a dead child nobody has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: object, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_the_child_gets_sigterm_when_its_gateway_is_killed_outright(tmp_path: Path) -> None:
    said = tmp_path / "vllm-said"
    vllm = VLLM.replace("sys.argv[1]", repr(str(said)))
    gateway = subprocess.Popen([sys.executable, "-c", GATEWAY, vllm], stdout=subprocess.PIPE, text=True)
    assert gateway.stdout is not None
    child = int(gateway.stdout.readline())
    try:
        assert wait_for(lambda: said.exists() and said.read_text() == "serving")
        command_line = Path(f"/proc/{child}/cmdline").read_bytes()
        assert b"PR_SET_PDEATHSIG" not in command_line, "the guard became the child (exec, the same pid)"
        gateway.kill()
        gateway.wait()
        assert wait_for(lambda: not running(child)), "the child outlived its gateway"
        assert said.read_text() == "SIGTERM", "it was asked to stop, as vLLM stops on SIGTERM"
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_whose_gateway_is_already_gone_does_not_start(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    marker = tmp_path / "started"
    command = guarded([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"])
    command[3] = str(gone.pid)  # as if the gateway that started it had died before the guard was set
    wrapped = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *command], capture_output=True, text=True)
    assert wrapped.returncode == 1
    assert "the gateway that started this vLLM is gone" in wrapped.stderr
    assert not marker.exists()


def test_a_wrapper_around_python_still_starts_the_child_and_says_what_is_lost(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    command = guarded([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"])
    wrapped = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *command], capture_output=True, text=True)
    assert wrapped.returncode == 0, wrapped.stderr
    assert marker.exists()
    assert "make the wrapper exec Python" in wrapped.stderr
