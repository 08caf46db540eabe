// Transcribe with the official OpenAI JavaScript SDK (npm `openai`) pointed at asr-gateway, and call the
// reference route with plain fetch + FormData.
//
// Usage:  npm ci --prefix examples/js
//         BASE_URL=http://localhost:8000 node examples/js/transcribe.mjs [AUDIO_FILE]
//
// Each result is printed under a "=== <name>" header; JSON results are printed as JSON.
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';

const baseUrl = (process.env.BASE_URL ?? 'http://localhost:8000').replace(/\/+$/, '');
const audio = process.argv[2] ?? 'tests/data/speech/ss_0870.wav';
if (!fs.existsSync(audio)) {
  console.error(`no such audio file: ${audio}`);
  process.exit(2);
}

// The gateway needs no key unless API_KEYS is set; the SDK insists on one.
const client = new OpenAI({
  baseURL: `${baseUrl}/v1`,
  apiKey: process.env.OPENAI_API_KEY ?? 'not-needed',
  timeout: 10 * 60 * 1000, // long files take a while on a CPU
  maxRetries: 0,
});

function section(name, body) {
  console.log(`=== ${name}`);
  console.log(typeof body === 'string' ? body.trimEnd() : JSON.stringify(body, null, 2));
}

// A fresh stream per request: the SDK reads the file name from it.
const file = () => fs.createReadStream(audio);

// json (the default): { text, usage }
const asJson = await client.audio.transcriptions.create({ model: 'whisper-1', file: file() });
section('json', asJson);

// text: a plain string
const text = await client.audio.transcriptions.create({ model: 'whisper-1', file: file(), response_format: 'text' });
section('text', text);

// verbose_json: language, duration, segments with their real times, and words when asked for
const verbose = await client.audio.transcriptions.create({
  model: 'whisper-1',
  file: file(),
  response_format: 'verbose_json',
  // Qwen3-ASR (BACKEND=vllm) has no word times: run with TIMESTAMP_GRANULARITIES=segment there
  timestamp_granularities: (process.env.TIMESTAMP_GRANULARITIES ?? 'segment,word').split(','),
});
section('verbose_json', verbose);

// srt and vtt: subtitles as strings; chunking_strategy "auto" selects chunked mode (for long files)
const srt = await client.audio.transcriptions.create({
  model: 'whisper-1',
  file: file(),
  response_format: 'srt',
  chunking_strategy: 'auto',
});
section('srt', srt);
const vtt = await client.audio.transcriptions.create({ model: 'whisper-1', file: file(), response_format: 'vtt' });
section('vtt', vtt);

// Streaming: server-sent events, one transcript.text.delta per finished piece, then transcript.text.done
const stream = await client.audio.transcriptions.create({
  model: 'whisper-1',
  file: file(),
  stream: true,
  chunking_strategy: { type: 'server_vad' }, // the object form selects chunked mode too
});
console.log('=== stream');
for await (const event of stream) {
  if (event.type === 'transcript.text.delta' || event.type === 'transcript.text.done') {
    console.log(JSON.stringify(event)); // one event per line
  }
}

// The reference route: no SDK, just fetch and FormData (Node 18+ has both)
const form = new FormData();
form.append('file', new Blob([fs.readFileSync(audio)]), path.basename(audio));
form.append('process_type', 'chunked'); // or "full"
form.append('request_id', 'js-example-1');
const response = await fetch(`${baseUrl}/v1/asr/transcribe/audio`, { method: 'POST', body: form });
if (!response.ok) {
  throw new Error(`reference route: HTTP ${response.status}: ${await response.text()}`);
}
section('reference', await response.json());
