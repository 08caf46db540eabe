#!/usr/bin/env bash
# Both route families with curl. Usage: examples/curl.sh [AUDIO_FILE]
# BASE_URL defaults to the server started by the README's first command.
set -euo pipefail
BASE_URL=${BASE_URL:-http://localhost:8000}
AUDIO=${1:-tests/data/speech/ss_0870.wav}

echo "# reference route, full (the whole file at once)"
curl -sS -X POST "$BASE_URL/v1/asr/transcribe/audio" \
  -H "X-Request-ID: example-1" \
  -F "file=@$AUDIO" \
  -F "process_type=full"
echo

echo "# reference route, chunked (pieces of at most 30 s cut at quiet points, in parallel)"
curl -sS -X POST "$BASE_URL/v1/asr/transcribe/audio" \
  -F "file=@$AUDIO" \
  -F "process_type=chunked" \
  -F "request_id=example-2"
echo

echo "# OpenAI route: json (the default)"
curl -sS "$BASE_URL/v1/audio/transcriptions" -F "file=@$AUDIO" -F "model=whisper-1"
echo

echo "# OpenAI route: text"
curl -sS "$BASE_URL/v1/audio/transcriptions" -F "file=@$AUDIO" -F "model=whisper-1" -F "response_format=text"

echo "# OpenAI route: srt"
curl -sS "$BASE_URL/v1/audio/transcriptions" -F "file=@$AUDIO" -F "model=whisper-1" -F "response_format=srt"

echo "# OpenAI route: vtt"
curl -sS "$BASE_URL/v1/audio/transcriptions" -F "file=@$AUDIO" -F "model=whisper-1" -F "response_format=vtt"

echo "# OpenAI route: verbose_json with word times, chunked"
curl -sS "$BASE_URL/v1/audio/transcriptions" -F "file=@$AUDIO" -F "model=whisper-1" \
  -F "response_format=verbose_json" -F "timestamp_granularities[]=word" -F "timestamp_granularities[]=segment" \
  -F "chunking_strategy=auto"
echo

echo "# the models served"
curl -sS "$BASE_URL/v1/models"
echo
