// hls.js in a real headless Chromium, on a page from another origin, plays
// rtmpd's HLS and Low-Latency HLS: the video's currentTime advances and the
// page sees no error.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  const hls = new Hls({ lowLatencyMode: lowLatency, enableWorker: false });
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

async function playsFor(app: string, lowLatency: boolean): Promise<void> {
  const publisher = publishTestPattern(server.rtmpUrl(app, 'web'), { seconds: 60 });
  try {
    await waitForStream(server, `rtmp/${app}/web`);
    const page = await browser.newPage();
    const src = server.httpUrl(`/${app}/web/index.m3u8`);
    await page.goto(`${siteUrl}?src=${encodeURIComponent(src)}&ll=${lowLatency ? 1 : 0}`);
    // Expressions as strings: this file is type-checked without the DOM library.
    const currentTime = () => page.evaluate<number>("document.getElementById('v').currentTime");
    await expect.poll(currentTime, { timeout: 30_000, interval: 250 }).toBeGreaterThan(1);
    const before = await currentTime();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await currentTime()).toBeGreaterThan(before + 1);
    expect(await page.evaluate<string[]>('window.hlsErrors')).toEqual([]);
    await page.close();
  } finally {
    publisher.child.kill('SIGKILL');
  }
}

describe('hls.js in Chromium, from another origin', () => {
  it('plays HLS and its currentTime advances', async () => {
    await playsFor('live', false);
    expect(browser.problems).toEqual([]);
  });

  it('plays Low-Latency HLS and its currentTime advances', async () => {
    await playsFor('ll', true);
    expect(browser.problems).toEqual([]);
  });
});
