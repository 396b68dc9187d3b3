// The web console against an rtmpd whose API wants a bearer token
// (--api-read-access token): the page asks for one, refuses a wrong one,
// shows the streams with the right one and remembers it across reloads.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../../../e2e/lib/chromium.ts';
import {
  listStreams,
  publishTestPattern,
  startServer,
  stopAll,
  tempDir,
  type Publisher,
  type RunningServer,
} from '../../test/support/processes.ts';
import { snapshotTimeoutFlags, THUMBNAIL_WAIT_MS } from './thumbnails.ts';

const TOKEN = 'console-test-token-0123456789';

let server: RunningServer;
let browser: TestBrowser;
let page: Page;
let publisher: Publisher;

beforeAll(async () => {
  const tokenFile = join(await tempDir('rtmpd-console-token-'), 'tokens');
  await writeFile(tokenFile, `${TOKEN}\n`);
  server = await startServer(['--api-token-file', tokenFile, '--api-read-access', 'token', ...snapshotTimeoutFlags]);
  publisher = publishTestPattern(server.rtmpUrl('live', 'cam1'), { seconds: 120 });
  browser = await launchChromium();
  page = await browser.newPage();
});

afterAll(async () => {
  await browser?.close();
  publisher?.child.kill('SIGKILL');
  await server?.stop();
  stopAll();
});

const dialog = () => page.locator('.token-dialog');
const card = () => page.locator('a.card[data-stream-id="rtmp/live/cam1"]');

async function submitToken(token: string): Promise<void> {
  await dialog().locator('input[name="token"]').fill(token);
  await dialog().getByRole('button', { name: 'Use token' }).click();
}

describe('web console with API tokens', () => {
  it('asks for a token, refuses a wrong one and shows the streams with the right one', async () => {
    await expect
      .poll(async () => (await listStreams(server, TOKEN)).find((s) => s.key === 'cam1')?.video?.width, { timeout: 15_000 })
      .toBe(640);
    let refusals = 0;
    page.on('response', (response) => {
      if (response.url() === server.httpUrl('/api/v1/rtmp/streams') && response.status() === 401) refusals++;
    });
    await page.goto(server.httpUrl('/'));
    await expect.poll(() => dialog().isVisible(), { timeout: 10_000 }).toBe(true);
    expect(refusals).toBe(1);
    expect(await card().count()).toBe(0);

    await submitToken('not-the-token');
    await expect.poll(() => refusals, { timeout: 10_000 }).toBe(2);
    await expect.poll(() => dialog().isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await card().count()).toBe(0);

    await submitToken(TOKEN);
    await expect.poll(() => card().locator('.thumb.loaded').count(), { timeout: THUMBNAIL_WAIT_MS }).toBe(1);
    expect(await dialog().isVisible()).toBe(false);
    // The only problems the page logged are the API's refusals of no token and of the wrong one.
    const refused = (p: string) => p.includes(server.httpUrl('/api/v1/rtmp/streams')) && /\b40[13]\b/.test(p);
    const problems = browser.problems.splice(0);
    expect(problems.filter(refused).length).toBeGreaterThanOrEqual(2);
    expect(problems.filter((p) => !refused(p))).toEqual([]);
  });

  it('remembers the token across a reload', async () => {
    await page.reload();
    await expect.poll(() => card().locator('.thumb.loaded').count(), { timeout: THUMBNAIL_WAIT_MS }).toBe(1);
    expect(await dialog().isVisible()).toBe(false);
    expect(browser.problems.splice(0)).toEqual([]);
    await page.goto('about:blank');
  });
});
