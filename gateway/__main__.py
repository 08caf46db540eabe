"""``python -m gateway serve``: the same as ``asr-gateway serve``."""

import sys

from gateway.cli import main

sys.exit(main())
