// The official OpenAI JavaScript SDK in a real (headless) Chromium, on a web page of another origin than the
// gateway, as a browser app calls it (`dangerouslyAllowBrowser: true`): the browser enforces CORS itself.
//
// Usage: node tests/browser/sdk_in_browser.mjs --base-url URL --sdk DIR --file AUDIO --key KEY [--chromium PATH]
//   --sdk: the openai npm package's folder (examples/js/node_modules/openai); the page imports its client.mjs.
// Prints one JSON object: {"origins": [APP, OTHER], "pages": {ORIGIN: {...what the page saw}},
// "problems": [...], "console": [...], "toGateway": [...requests the page sent to the gateway]}.
//
// The pages are served by this script's own HTTP servers on loopback ports the system picks (a page on a
// public address could not call a loopback gateway at all: Chromium's private network rules): the first as
// http://127.0.0.1:PORT, the second as http://localhost:PORT, so a gateway that allows http://127.0.0.1:* allows
// the first origin only. Every request to the gateway goes over the network to the live server, preflight
// included.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    sdk: { type: 'string' },
    file: { type: 'string' },
    key: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const name of ['base-url', 'sdk', 'file', 'key']) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const baseUrl = args['base-url'].replace(/\/+$/, '');
const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>app</title></head><body></body></html>';

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const problems = [];
const toGateway = [];
const consoleLines = []; // the browser's own words when it blocks a request

// The pages' own origins: the page, the SDK's modules and the clip, from disk
function serve(request, response) {
  const { pathname } = new URL(request.url, 'http://page');
  const send = (type, body) => response.writeHead(200, { 'content-type': type }).end(body);
  if (pathname === '/') return send('text/html', PAGE);
  if (pathname === '/clip.wav') return send('audio/wav', fs.readFileSync(args.file));
  if (pathname.startsWith('/openai/')) {
    const file = path.join(args.sdk, pathname.slice('/openai/'.length));
    if (file.startsWith(args.sdk) && fs.existsSync(file)) return send('text/javascript', fs.readFileSync(file));
  }
  return response.writeHead(404).end();
}
const servers = [];
const ORIGINS = [];
for (const host of ['127.0.0.1', 'localhost']) {
  const server = http.createServer(serve);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve)); // a free port, no race for one
  servers.push(server);
  ORIGINS.push(`http://${host}:${server.address().port}`);
}

// What runs in the page: transcribe with the right key (json, then text), then with a wrong one.
async function inPage({ baseUrl, key }) {
  const { OpenAI } = await import('/openai/client.mjs');
  const blob = await (await fetch('/clip.wav')).blob();
  const file = new File([blob], 'clip.wav', { type: 'audio/wav' });
  const options = { baseURL: `${baseUrl}/v1`, dangerouslyAllowBrowser: true, maxRetries: 0 };
  const seen = {};
  try {
    const client = new OpenAI({ ...options, apiKey: key });
    const { data, response } = await client.audio.transcriptions.create({ file, model: 'whisper-1' }).withResponse();
    seen.text = data.text;
    seen.requestId = response.headers.get('x-request-id');
    seen.plain = await client.audio.transcriptions.create({ file, model: 'whisper-1', response_format: 'text' });
  } catch (error) {
    seen.error = { name: error.constructor.name, status: error.status ?? null, message: String(error.message) };
  }
  try {
    await new OpenAI({ ...options, apiKey: 'wrong-key' }).audio.transcriptions.create({ file, model: 'whisper-1' });
    seen.wrongKey = { name: 'no error' };
  } catch (error) {
    seen.wrongKey = { name: error.constructor.name, status: error.status ?? null, code: error.code ?? null };
  }
  return seen;
}

const pages = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => consoleLines.push(`${new URL(page.url()).origin} ${message.text()}`));
  page.on('request', (request) => {
    if (request.url().startsWith(baseUrl)) toGateway.push(`${request.method()} ${request.url()}`);
  });
  for (const origin of ORIGINS) {
    await page.goto(`${origin}/`, { waitUntil: 'load' });
    pages[origin] = await page.evaluate(inPage, { baseUrl, key: args.key });
  }
} finally {
  await context.close();
  for (const server of servers) server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ origins: ORIGINS, pages, problems, console: consoleLines, toGateway }, null, 2));
