"""Wire formats only: OpenAI and reference-route request parsing and response rendering.

Nothing here imports a web framework; everything is a pure function of its inputs.
"""
