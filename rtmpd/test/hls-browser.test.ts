// hls.js in a real headless Chromium, on a page from another origin, plays
// rtmpd's HLS and Low-Latency HLS: the video's currentTime advances and the
// page sees no error. A transcoded stream's multivariant playlist plays too,
// and hls.js switches between its variants.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type TestBrowser } from '../../e2e/lib/chromium.ts';
import { publishTestPattern, startServer, stopAll, waitForStream, type RunningServer } from './support/processes.ts';

let server: RunningServer;
let browser: TestBrowser;
let site: Server;
let siteUrl: string;

// The page: hls.js plays ?src= into a <video>; errors land in window.hlsErrors.
const PAGE = `<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/hls.js"></script>
<script>
  const src = new URLSearchParams(location.search).get('src');
  const lowLatency = new URLSearchParams(location.search).get('ll') === '1';
  window.hlsErrors = [];
  const hls = (window.hls = new Hls({ lowLatencyMode: lowLatency, enableWorker: false }));
  hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) window.hlsErrors.push(data.type + ' ' + data.details); });
  hls.loadSource(src);
  hls.attachMedia(document.getElementById('v'));
  document.getElementById('v').play().catch(() => {});
</script></body></html>`;

beforeAll(async () => {
  server = await startServer([
    '--hls-segment-seconds',
    '1',
    '--hls-rules',
    JSON.stringify([{ app: 'll', lowLatency: true }]),
    '--transcode-rules',
    JSON.stringify([{ app: 'abr', renditions: [{ name: '180p', height: 180, videoBitrate: 300, audioBitrate: 64 }] }]),
    '--recording-enabled',
    'false',
    '--snapshot-enabled',
    'false',
  ]);
  const hlsJs = await readFile(createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js'));
  // Another origin than rtmpd's: a different port.
  site = createServer((req, res) => {
    if (req.url === '/hls.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(hlsJs);
    else res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  site?.close();
  await server?.stop();
  stopAll();
});

interface Play {
  lowLatency?: boolean;
  playlist?: string;
  /** Streams to wait for besides app/web (a transcode's renditions). */
  streams?: string[];
  /** Runs once playback advances. */
  whilePlaying?: (page: Page) => Promise<void>;
}

async function playsFor(
  app: string,
  { lowLatency = false, playlist = 'index.m3u8', streams = [], whilePlaying }: Play = {},
): Promise<void> {
  const publisher = publishTestPattern(server.rtmpUrl(app, 'web'), { seconds: 60 });
  try {
    for (const id of [`rtmp/${app}/web`, ...streams]) await waitForStream(server, id, 30_000);
    const page = await browser.newPage();
    const src = server.httpUrl(`/${app}/web/${playlist}`);
    await page.goto(`${siteUrl}?src=${encodeURIComponent(src)}&ll=${lowLatency ? 1 : 0}`);
    // Expressions as strings: this file is type-checked without the DOM library.
    const currentTime = () => page.evaluate<number>("document.getElementById('v').currentTime");
    await expect.poll(currentTime, { timeout: 30_000, interval: 250 }).toBeGreaterThan(1);
    const before = await currentTime();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await currentTime()).toBeGreaterThan(before + 1);
    await whilePlaying?.(page);
    expect(await page.evaluate<string[]>('window.hlsErrors')).toEqual([]);
    await page.close();
  } finally {
    publisher.child.kill('SIGKILL');
  }
}

describe('hls.js in Chromium, from another origin', () => {
  it('plays HLS and its currentTime advances', async () => {
    await playsFor('live');
    expect(browser.problems).toEqual([]);
  });

  it('plays Low-Latency HLS and its currentTime advances', async () => {
    await playsFor('ll', { lowLatency: true });
    expect(browser.problems).toEqual([]);
  });

  it("plays a transcoded stream's multivariant playlist and switches to its rendition and back", async () => {
    const whilePlaying = async (page: Page) => {
      // hls.js orders the variants by bandwidth.
      expect(await page.evaluate<number[]>('window.hls.levels.map((level) => level.height)')).toEqual([180, 360]);
      const playing = () => page.evaluate<number>('window.hls.levels[window.hls.currentLevel]?.height ?? 0');
      for (const height of [180, 360]) {
        await page.evaluate(`window.hls.currentLevel = window.hls.levels.findIndex((level) => level.height === ${height})`);
        await expect.poll(playing, { timeout: 30_000, interval: 250 }).toBe(height);
        const before = await page.evaluate<number>("document.getElementById('v').currentTime");
        await expect
          .poll(() => page.evaluate<number>("document.getElementById('v').currentTime"), { timeout: 15_000, interval: 250 })
          .toBeGreaterThan(before + 1);
      }
    };
    await playsFor('abr', { playlist: 'master.m3u8', streams: ['rtmp/abr/web_180p'], whilePlaying });
    expect(browser.problems).toEqual([]);
  });
});
