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

import pytest

from gateway.backends.vllm.orphan_guard import guarded

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG and /proc are Linux's")

# a gateway: starts its guarded child, says the child's pid, waits to be killed
GATEWAY = """
import subprocess, sys, time
import pytest

from gateway.backends.vllm.orphan_guard import guarded

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG and /proc are Linux's")
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
    child = int(gateway.stdout.readline() or 0)  # empty if the gateway failed before starting it
    assert child, "the stand-in gateway did not start its child"
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
    """Gone before the guard was set (here: a pid that ran and ended), the child would never be stopped."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    marker = tmp_path / "started"
    command = guarded([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"])
    command[3] = str(gone.pid)  # as if the gateway that started it had died before the guard was set
    wrapped = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *command], capture_output=True, text=True)
    assert wrapped.returncode == 1
    assert "the gateway that started this vLLM is gone" in wrapped.stderr
    assert not marker.exists()


# vLLM: writes the signal it gets when its parent dies (PR_GET_PDEATHSIG)
SAYS_ITS_GUARD = """
import ctypes, sys
found = ctypes.c_int()
ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(found))
open(sys.argv[1], "w").write(str(found.value))
"""


def test_a_wrapper_script_as_vllm_python_still_starts_a_guarded_child(tmp_path: Path) -> None:
    """``VLLM_PYTHON`` may be a script that runs Python without exec: the child starts, guarded (against the
    wrapper's death, which is all a child of the wrapper can be), the wrapper run once, and the log says so."""
    runs, said = tmp_path / "wrapper-runs", tmp_path / "guard"
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{runs}"\n"{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    command = guarded([str(wrapper), "-c", SAYS_ITS_GUARD, str(said)])
    # the gateway's place: this process, the wrapper's parent
    started = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert said.read_text() == str(int(signal.SIGTERM)), "the child kept its guard"
    assert runs.read_text().splitlines() == ["run"], "the wrapper ran once (not again by the guard)"
    assert "end the wrapper with exec" in started.stderr
