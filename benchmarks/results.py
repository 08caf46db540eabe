"""Where every benchmark script writes its raw results (not committed)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def save(kind: str, result: dict[str, Any]) -> Path:
    """Write ``result`` as ``results/{kind}-{timestamp}.json``; return its path."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    return out
