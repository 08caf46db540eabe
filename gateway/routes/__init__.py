"""HTTP routes: thin adapters from each route family's wire format to the pipeline."""

from __future__ import annotations

from typing import Any

from litestar import Request

from gateway.pipeline import Pipeline


def pipeline_of(request: Request[Any, Any, Any]) -> Pipeline:
    """The app's pipeline, for the transcription routes.

    Read from the app's state, not injected: Litestar's dependency resolution costs each request
    about 7 us of a warm CPU (three times that live), on the path whose added milliseconds
    docs/benchmarks.md counts.
    """
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline
