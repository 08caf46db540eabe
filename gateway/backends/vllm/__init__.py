"""Qwen3-ASR served by vLLM: external replicas or a child process the gateway supervises."""

from gateway.backends.vllm.backend import VllmBackend, VllmConfig
from gateway.backends.vllm.managed import ManagedConfig

__all__ = ["ManagedConfig", "VllmBackend", "VllmConfig"]
