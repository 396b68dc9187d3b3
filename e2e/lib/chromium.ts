import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium (installed by hack/setup.sh); playwright-core never downloads a browser here. */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// Headless, no sandbox (tests run as root), and nothing that phones home.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Media plays in a page nobody clicked; tests check that it advances.
  '--autoplay-policy=no-user-gesture-required',
];

export interface TestBrowser {
  context: BrowserContext;
  /** Console messages of level error and failed or 4xx/5xx requests, across every page of the context. */
  problems: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/**
 * A fresh headless Chromium with its own --user-data-dir, collecting every
 * console error, uncaught page error and failed request, so a test can assert
 * that a page loaded cleanly.
 */
export async function launchChromium(
  viewport = { width: 1280, height: 800 },
  { ignoreHTTPSErrors = false }: { /** Takes a self-signed certificate, as a test's server has. */ ignoreHTTPSErrors?: boolean } = {},
): Promise<TestBrowser> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
    viewport,
    ignoreHTTPSErrors,
  });
  const problems: string[] = [];
  const watch = (page: Page): void => {
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (request) => {
      // A media response the player closes on purpose (leaving the page, switching source) is no failure.
      if (request.failure()?.errorText === 'net::ERR_ABORTED') return;
      problems.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
    });
    page.on('response', (response) => {
      if (response.status() < 400) return;
      const problem = `HTTP ${response.status()}: ${response.request().method()} ${response.url()}`;
      problems.push(problem);
      // The body (rtmpd's JSON error) says why; it is added when it has arrived.
      void response.text().then(
        (body) => problems.splice(problems.indexOf(problem), 1, `${problem}: ${body.slice(0, 300)}`),
        () => undefined,
      );
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  const browser: Browser | null = context.browser();
  return {
    context,
    problems,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close();
      await browser?.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
