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
try:
    if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM) != 0:  # PR_SET_PDEATHSIG
        print("asr-gateway: PR_SET_PDEATHSIG refused: vLLM would outlive a gateway killed outright", file=sys.stderr)
except (OSError, AttributeError):
    pass  # not Linux
if os.getppid() != gateway:  # the gateway died before the guard was set, or VLLM_PYTHON is a wrapper
    try:
        os.kill(gateway, 0)
    except ProcessLookupError:
        sys.exit("asr-gateway: the gateway that started this vLLM is gone")
    except PermissionError:
        pass  # a process of another user's: alive
    print("asr-gateway: VLLM_PYTHON runs Python through a wrapper: vLLM stops with the wrapper, "
          "not with a gateway killed outright (make the wrapper exec Python)", file=sys.stderr)
os.execvp(command[0], command)
"""


def guarded(command: Sequence[str]) -> list[str]:
    """``command`` (its first word a Python interpreter) started so that it gets SIGTERM when this process dies."""
    return [command[0], "-c", GUARD, str(os.getpid()), *command]
