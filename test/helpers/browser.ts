/**
 * A headless Debian Chromium for browser tests, driven by playwright-core: a fresh profile per
 * launch, every request and console message recorded so tests can check origins and errors.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's package puts the browser here; `.ci/run` installs it when missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
/** Screenshots and other artifacts of browser tests (git-ignored). */
export const ARTIFACT_DIR = path.resolve(import.meta.dirname, '../../test-artifacts/console');

// No GPU, no QUIC, nothing the browser would fetch for itself (updates, sync, safe browsing).
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether the system Chromium is installed. */
export function hasChromium(): boolean {
  return existsSync(CHROMIUM_PATH);
}

/** What a page did that a test may check: every request URL, console errors, uncaught errors. */
export interface PageRecord {
  readonly requests: string[];
  readonly consoleErrors: string[];
}

/** Launches Chromium (Playwright gives each launch a new, temporary user-data-dir). */
export async function launchChromium(): Promise<Browser> {
  await mkdir(ARTIFACT_DIR, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/** A new context and page at `viewport`, recording into `record`. */
export async function openPage(
  browser: Browser,
  record: PageRecord,
  viewport = { width: 1280, height: 800 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, serviceWorkers: 'block' });
  const page = await context.newPage();
  page.on('request', (request) => record.requests.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') record.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => record.consoleErrors.push(`uncaught: ${error.message}`));
  return { context, page };
}

/** Saves a full-page screenshot as a test artifact. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(ARTIFACT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
