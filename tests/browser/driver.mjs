// Drives Debian's headless Chromium through the demo page with playwright-core
// and prints one JSON document of what the page showed. Spawned by
// tests/browser/test_page.py; playwright-core comes from page/node_modules
// (`make page-deps`), the browser from `apt-get install chromium`.
//
//   node tests/browser/driver.mjs '{"allowedUrl": ..., "deniedUrl": ...,
//       "artifacts": "artifacts/browser", "chromium": "/usr/bin/chromium"}'
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, '../../page/package.json'));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.argv[2]);
const timeout = cfg.timeoutMs || 20000;
const artifacts = resolve(cfg.artifacts || 'artifacts/browser');
mkdirSync(artifacts, { recursive: true });

const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.kitState)));

async function visit(context, url, log) {
  const page = await context.newPage();
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(url, { timeout });
  return page;
}

// The allowed origin: connects, upgrades, shows its instance, receives a
// broadcast from a Python client on another instance, broadcasts itself.
async function allowed(browser, out) {
  const log = [];
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  try {
    const page = await visit(context, cfg.allowedUrl, log);
    await page.waitForFunction(() => window.kitState && window.kitState.status === 'connected'
      && window.kitState.instance && window.kitState.transport === 'websocket'
      && !document.getElementById('broadcast').disabled, null, { timeout });
    if (!cfg.selfOnly) {  // selfOnly: no Python clients (the TLS test)
      await page.waitForFunction(() => window.kitState.messages.some(
        (m) => m.from !== window.kitState.instance && String(m.data).startsWith('python')),
      null, { timeout });
    }
    await page.fill('#text', cfg.browserText || 'hello from the browser');
    await page.click('#broadcast');
    await page.waitForFunction((text) => window.kitState.messages.some((m) => m.data === text),
      cfg.browserText || 'hello from the browser', { timeout });
    out.allowed = await state(page);
    out.allowed.url = await page.evaluate(() => window.kitSocket.io.engine.transport.ws
      ? window.kitSocket.io.engine.transport.ws.url : null);
    out.allowed.screenshot = join(artifacts, 'page.png');
    await page.screenshot({ path: out.allowed.screenshot, fullPage: true });
    out.allowed.ok = true;
  } catch (e) {
    out.allowed = { ok: false, failure: String(e && e.message || e) };
    try { out.allowed.state = await state(context.pages()[0]); } catch (_) { /* page gone */ }
  } finally {
    (out.allowed || {}).log = log;
    await context.close();
  }
}

// An origin that is not allowed: the page must fail to connect and say so.
async function denied(browser, out) {
  const log = [];
  const context = await browser.newContext({ viewport: { width: 900, height: 480 } });
  try {
    const page = await visit(context, cfg.deniedUrl, log);
    await page.waitForFunction(() => window.kitState && window.kitState.status === 'error'
      && window.kitState.errors.some((e) => e.startsWith('connect_error')), null, { timeout });
    out.denied = await state(page);
    out.denied.errorText = await page.textContent('#error');
    out.denied.screenshot = join(artifacts, 'page-denied.png');
    await page.screenshot({ path: out.denied.screenshot, fullPage: true });
    out.denied.ok = true;
  } catch (e) {
    out.denied = { ok: false, failure: String(e && e.message || e) };
  } finally {
    (out.denied || {}).log = log;
    await context.close();
  }
}

const out = {};
let browser;
try {
  // launch() gives Chromium a fresh temporary profile (--user-data-dir) of
  // its own and removes it on close; it refuses a --user-data-dir argument.
  browser = await chromium.launch({
    executablePath: cfg.chromium || '/usr/bin/chromium',
    headless: true,
    timeout,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(cfg.extraArgs || [])],
  });
  out.browser = browser.version();
  if (cfg.allowedUrl) await allowed(browser, out);
  if (cfg.deniedUrl) await denied(browser, out);
} catch (e) {
  out.failure = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
