"""The shared transcription pipeline: admit, decode, plan, run, merge."""

from gateway.pipeline.core import LONG_TRANSCRIPT_SECONDS, Decoded, Event, Finished, PieceDone, Pipeline
from gateway.pipeline.merge import separator
from gateway.pipeline.options import Mode, Options

__all__ = [
    "LONG_TRANSCRIPT_SECONDS",
    "Decoded",
    "Event",
    "Finished",
    "Mode",
    "Options",
    "PieceDone",
    "Pipeline",
    "separator",
]
