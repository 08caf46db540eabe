"""A managed vLLM stops when its gateway dies, even when the gateway is killed outright.

SIGKILL (``kill -9``, the kernel's OOM killer) gives the gateway no chance to stop its
child. Left alone, the child would keep serving on its port with the accelerator's memory
held, and the next gateway's child could not start until someone killed it by hand. So the
child is started through a few lines that ask Linux to send it SIGTERM when its parent
dies (``PR_SET_PDEATHSIG``) and then become vLLM (``exec``): vLLM stops its engine
processes on SIGTERM as it does on a normal shutdown.

The lines run in the vLLM environment's interpreter, where the gateway's package is not
installed, so they travel on the command line. Where there is no ``prctl`` (not Linux),
the child starts unguarded. The signal is tied to the thread that started the child: the
event loop's, which lives as long as the gateway; and to the child's parent, so a
``VLLM_PYTHON`` that is a wrapper script running Python without ``exec`` guards vLLM only
against the wrapper's death (said in vLLM's output, which the gateway logs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# argv: the gateway's pid, then vLLM's command line
GUARD = """\
import ctypes, os, signal, sys
gateway, command = int(sys.argv[1]), sys.argv[2:]

def ancestors(pid):
    for _ in range(16):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return
        yield pid

try:
    if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM) != 0:  # PR_SET_PDEATHSIG
        print("asr-gateway: PR_SET_PDEATHSIG refused: vLLM would outlive a gateway killed outright", file=sys.stderr)
except (OSError, AttributeError):
    pass  # not Linux: no guard, nothing to check
else:
    if os.getppid() != gateway:  # a wrapper script between, or the gateway died before the guard was set
        if gateway not in ancestors(os.getppid()):
            sys.exit("asr-gateway: the gateway that started this vLLM is gone")
        print("asr-gateway: VLLM_PYTHON runs Python through a wrapper: vLLM stops with the wrapper, "
              "not with a gateway killed outright (end the wrapper with exec)", file=sys.stderr)
# this interpreter, not command[0] again: a wrapper would fork it anew, and a fork drops the guard
if sys.executable:
    os.execv(sys.executable, [sys.executable, *command[1:]])
os.execvp(command[0], command)
"""


def guarded(command: Sequence[str]) -> list[str]:
    """``command`` (its first word a Python interpreter) started so that it gets SIGTERM when this process dies."""
    return [command[0], "-c", GUARD, str(os.getpid()), *command]
