import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { repoRoot } from './temporal-cli.js';

// Headless Chromium for tests that look at a web page (the Temporal Web UI).
// Debian's `chromium` package only (scripts/chromium.sh installs it if missing),
// driven by playwright-core: no browser build is ever downloaded.

/** Where screenshots go (git-ignored). */
export const uiArtifactsDir = path.join(repoRoot, 'test-artifacts/ui');

/**
 * Flags for Chromium as root on this closed network: no sandbox (root), no GPU,
 * and none of the background connections (QUIC, component updates, sync,
 * variations) that the machine refuses and that would slow page loads down.
 */
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

/** The Chromium binary: NT_CHROMIUM, else /usr/bin/chromium (installed from Debian if missing). */
export function chromiumPath(): string {
  if (process.env.NT_CHROMIUM) return process.env.NT_CHROMIUM;
  return execFileSync('bash', [path.join(repoRoot, 'scripts/chromium.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export interface TestBrowser {
  context: BrowserContext;
  /** Requests to other origins that were refused (the UI's news feed and the like). */
  blocked: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export interface BrowserOptions {
  /** Only this origin is reachable; everything else is aborted in the browser. */
  origin: string;
  /** The Chromium binary (default: chromiumPath(), which may install it). */
  executablePath?: string;
  /** Default timeout of every locator wait and navigation (ms); a 2-core machine under load is slow. */
  timeoutMs?: number;
}

/** Starts headless Chromium with a new, empty profile that is removed on close. */
export async function launchBrowser(opts: BrowserOptions): Promise<TestBrowser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'nt-chromium-'));
  const timeout = opts.timeoutMs ?? 60_000;
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: opts.executablePath ?? chromiumPath(),
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 1000 },
      timeout,
      timezoneId: 'UTC',
      locale: 'en-US',
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(timeout);
  context.setDefaultNavigationTimeout(timeout);
  const origin = new URL(opts.origin).origin;
  const blocked: string[] = [];
  // Deterministic on any network: the page gets the UI and nothing else.
  await context.route(
    (url) => url.origin !== origin,
    (route) => {
      blocked.push(route.request().url());
      return route.abort('blockedbyclient');
    },
  );
  return {
    context,
    blocked,
    async newPage() {
      return context.newPage();
    },
    async close() {
      try {
        await context.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}

/** Saves a full-page screenshot as test-artifacts/ui/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(uiArtifactsDir, { recursive: true });
  const file = path.join(uiArtifactsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Waits until the locator is visible (the page is an SPA: content comes after the load event). */
export async function visible(locator: Locator, timeoutMs?: number): Promise<Locator> {
  await locator.waitFor({ state: 'visible', ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}) });
  return locator;
}

/** Polls an HTTP URL until it answers 200 (a freshly started server's port may not serve yet). */
export async function waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await res.body?.cancel();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
