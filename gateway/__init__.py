"""An OpenAI-compatible speech-to-text gateway for Qwen3-ASR on vLLM, with an embedded CPU engine."""

__version__ = "0.1.0"
