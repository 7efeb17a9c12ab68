// Launches Debian's headless Chromium through playwright-core, with a fresh
// profile, and keeps what each page logs for failure reports.

import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { TIMEOUT, tempDir } from './servers.mjs';

export const CHROMIUM = process.env.LAF_E2E_CHROMIUM || '/usr/bin/chromium';

// Exactly these flags: no sandbox (CI containers), no GPU, and no traffic
// but the tests' own, which all goes to 127.0.0.1.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Chromium with a fresh --user-data-dir (Playwright passes the
 * folder as that flag; it refuses the flag in args) and resolves to its
 * BrowserContext. Every request and WebSocket a page opens is checked to be
 * on 127.0.0.1: offLoopback lists any that were not.
 */
export async function launch() {
  const context = await chromium.launchPersistentContext(tempDir('chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
  context.setDefaultTimeout(TIMEOUT);
  context.offLoopback = [];
  const check = (url) => {
    const u = new URL(url);
    if (['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol) && u.hostname !== '127.0.0.1') {
      context.offLoopback.push(url);
    }
  };
  context.on('request', (req) => check(req.url()));
  context.on('page', (page) => page.on('websocket', (ws) => check(ws.url())));
  return context;
}

/**
 * Opens a new page that records its navigations, console, errors and
 * WebSockets, and registers with fx its closing and, for a failure report,
 * what it recorded and a screenshot.
 */
export async function openPage(fx, context) {
  const page = await context.newPage();
  const lines = [];
  const stamp = () => new Date().toISOString().slice(11, 23);
  page.on('console', (m) => lines.push(`${stamp()} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`${stamp()} page error: ${e.message}`));
  page.on('websocket', (ws) => {
    lines.push(`${stamp()} WebSocket ${ws.url()}`);
    ws.on('close', () => lines.push(`${stamp()} WebSocket closed ${ws.url()}`));
    ws.on('socketerror', (e) => lines.push(`${stamp()} WebSocket error ${ws.url()}: ${e}`));
  });
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) lines.push(`${stamp()} navigated to ${f.url()}`); });
  fx.onFailure(async () => {
    let shot = '';
    if (!page.isClosed()) {
      const path = join(tempDir('failed-page'), 'page.png');
      await page.screenshot({ path, fullPage: true, timeout: 5000 });
      shot = `screenshot: ${path}\n`;
    }
    return `--- page ---\n${lines.join('\n') || '(nothing logged)'}\n${shot}`;
  });
  fx.defer(() => page.close());
  return page;
}
