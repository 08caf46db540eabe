// Upload a file through the gateway's Swagger page in a real (headless) Chromium, as a person would:
// open /docs, expand an operation, "Try it out", choose the file, "Execute", read the response from the page.
//
// Usage: node tests/browser/upload_via_swagger.mjs --base-url URL --file AUDIO --out DIR [--chromium PATH]
// Prints one JSON object: {"results": [{operation, status, body, requestUrl, screenshot}, ...], "blocked": [...]}.
//
// The gateway serves Swagger UI's files and the page's icon itself: every request that would leave it is
// aborted and reported under "blocked" (the test wants none), as on a machine with no internet.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    file: { type: 'string' },
    out: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '90000' },
  },
});
for (const name of ['base-url', 'file', 'out']) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const baseUrl = args['base-url'].replace(/\/+$/, '');
const timeout = Number(args.timeout);

// What to do on each operation: its path, the form fields to set besides the file, and the screenshot's name.
const OPERATIONS = [
  {
    path: '/v1/asr/transcribe/audio',
    fields: {}, // process_type left as the page shows it: the server's default applies
    screenshot: 'swagger-reference.png',
  },
  {
    path: '/v1/audio/transcriptions',
    fields: { response_format: 'text' },
    screenshot: 'swagger-openai.png',
  },
];

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'swagger-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium,
  headless: true,
  viewport: { width: 1280, height: 1000 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const blocked = [];
const problems = [];
await context.route('**/*', async (route) => {
  const url = route.request().url();
  if (url.startsWith(baseUrl + '/')) return route.continue();
  blocked.push(url);
  return route.abort();
});

const results = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  for (const operation of OPERATIONS) {
    await page.goto(`${baseUrl}/docs`, { waitUntil: 'load' });
    const block = page.locator('.opblock-post').filter({
      has: page.locator(`.opblock-summary-path[data-path="${operation.path}"]`),
    });
    await block.waitFor({ timeout });

    await block.locator('.opblock-summary').click(); // expand
    await block.getByRole('button', { name: 'Try it out' }).click();
    await block.locator('input[type="file"]').setInputFiles(args.file);
    for (const [name, value] of Object.entries(operation.fields)) {
      const row = block.locator(`tr[data-property-name="${name}"]`);
      const select = row.locator('select');
      if ((await select.count()) > 0) await select.selectOption(value);
      else await row.locator('input').fill(value);
    }
    await block.getByRole('button', { name: 'Execute' }).click();

    // The live response: its status and body, as the page shows them
    const response = block.locator('.live-responses-table tbody tr.response').first();
    await response.waitFor({ timeout });
    const status = response.locator('.response-col_status');
    const body = response.locator('.response-col_description .highlight-code pre').first();
    await body.waitFor({ timeout });
    const requestUrl = await block.locator('.request-url pre').first().textContent();

    // Screenshot: from the chosen file down to the response body (page coordinates)
    await response.scrollIntoViewIfNeeded();
    const scrollY = await page.evaluate(() => window.scrollY);
    const top = (await block.locator('input[type="file"]').boundingBox()).y + scrollY - 60;
    const bodyBox = await body.boundingBox();
    const bottom = bodyBox.y + bodyBox.height + scrollY + 20;
    const screenshot = path.join(args.out, operation.screenshot);
    await page.screenshot({
      path: screenshot,
      fullPage: true,
      clip: { x: 0, y: top, width: 1280, height: bottom - top },
    });

    results.push({
      operation: operation.path,
      status: Number((await status.textContent()).trim()),
      body: (await body.textContent()) ?? '',
      requestUrl,
      screenshot,
    });
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ results, blocked, problems }, null, 2));
