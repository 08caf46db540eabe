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
event loop's, which lives as long as the gateway.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# argv: the gateway's pid, then vLLM's command line
GUARD = """\
import ctypes, os, signal, sys
parent, command = int(sys.argv[1]), sys.argv[2:]
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(1)  # the gateway died before the guard was set: nobody would ever send it
os.execvp(command[0], command)
"""


def guarded(command: Sequence[str]) -> list[str]:
    """``command`` (its first word a Python interpreter) started so that it gets SIGTERM when this process dies."""
    return [command[0], "-c", GUARD, str(os.getpid()), *command]
