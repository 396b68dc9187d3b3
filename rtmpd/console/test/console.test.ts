// The web console in a real browser (Debian's Chromium, driven by
// playwright-core) against a real rtmpd with two ffmpeg publishers, listening
// for RTMPS and HTTPS too (a self-signed certificate the browser is told to
// take). Screenshots go to .artifacts/console/.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../../../e2e/lib/chromium.ts';
import { freePort } from '../../../e2e/lib/free-port.ts';
import {
  listStreams,
  probe,
  publishTestPattern,
  startServer,
  stopAll,
  waitForStream,
  type Publisher,
  type RunningServer,
} from '../../test/support/processes.ts';
import { selfSigned } from '../../test/support/certificates.ts';
import { snapshotTimeoutFlags, THUMBNAIL_WAIT_MS } from './thumbnails.ts';

const ARTIFACTS = resolve(import.meta.dirname, '../../../.artifacts/console');
const PUBLISHED = ['cam1', 'cam2'];

let server: RunningServer;
let rtmpsPort: number;
let httpsPort: number;
let certificateDir: string;
let browser: TestBrowser;
let page: Page;
const publishers: Publisher[] = [];

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  certificateDir = await mkdtemp(join(tmpdir(), 'rtmpd-console-tls-'));
  const certificate = await selfSigned(certificateDir);
  server = await startServer([
    ...['--rtmps-bind', '127.0.0.1:0', '--https-bind', '127.0.0.1:0'],
    ...['--tls-cert-file', certificate.certFile, '--tls-key-file', certificate.keyFile],
    ...snapshotTimeoutFlags,
  ]);
  const ready = server.logs.find((line) => line.msg === 'rtmpd ready') as { rtmps: string; https: string };
  const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
  rtmpsPort = portOf(ready.rtmps);
  httpsPort = portOf(ready.https);
  // The hue turns every 7 s, so thumbnails refreshed every 4 s never show the same picture twice.
  for (const key of PUBLISHED)
    publishers.push(publishTestPattern(server.rtmpUrl('live', key), { seconds: 300, videoFilter: 'hue=H=2*PI*t/7' }));
  await Promise.all(PUBLISHED.map((key) => waitForStream(server, `rtmp/live/${key}`)));
  browser = await launchChromium(undefined, { ignoreHTTPSErrors: true });
  page = await browser.newPage();
  await page.emulateMedia({ colorScheme: 'dark' });
});

afterAll(async () => {
  await browser?.close();
  for (const publisher of publishers) publisher.child.kill('SIGKILL');
  await server?.stop();
  stopAll();
  await rm(certificateDir, { recursive: true, force: true });
});

afterEach(() => {
  // Whatever a test did, the page logged no error and no request failed.
  expect(browser.problems.splice(0)).toEqual([]);
});

const card = (key: string) => page.locator(`a.card[data-stream-id="rtmp/live/${key}"]`);

/** The thumbnail as the page shows it, scaled to 160 × 90 grey levels. */
const thumbnailPixels = (key: string): Promise<number[]> =>
  card(key)
    .locator('img')
    .evaluate((img: HTMLImageElement) => {
      const canvas = document.createElement('canvas');
      canvas.width = 160;
      canvas.height = 90;
      const context = canvas.getContext('2d')!;
      context.drawImage(img, 0, 0, canvas.width, canvas.height);
      const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
      const grey: number[] = [];
      for (let i = 0; i < rgba.length; i += 4) grey.push(Math.round((rgba[i]! + rgba[i + 1]! + rgba[i + 2]!) / 3));
      return grey;
    });

/** Share of pixels whose grey level moved by more than a compression artefact would. */
function changedShare(a: number[], b: number[]): number {
  return a.filter((value, i) => Math.abs(value - b[i]!) > 24).length / a.length;
}

describe('web console', () => {
  it('shows every live stream with its facts and a thumbnail that moves', async () => {
    const requests: string[] = [];
    page.on('request', (request) => requests.push(new URL(request.url()).pathname));
    await page.goto(server.httpUrl('/'));
    for (const key of PUBLISHED) {
      await expect.poll(() => card(key).locator('.thumb.loaded').count(), { timeout: THUMBNAIL_WAIT_MS }).toBe(1);
      await expect.poll(() => card(key).innerText()).toMatch(/H\.264 · 640×360 · 25 fps · AAC/);
    }
    expect(await page.locator('#summary').innerText()).toMatch(/^2 live streams · 0 players · \d+(\.\d)? [kM]bps in$/);
    const before = await thumbnailPixels('cam1');
    expect(new Set(before).size).toBeGreaterThan(16); // a picture, not a blank
    await page.screenshot({ path: join(ARTIFACTS, 'grid-1.png') });
    let share = 0;
    await expect
      .poll(async () => (share = changedShare(before, await thumbnailPixels('cam1'))), { timeout: 20_000, interval: 1000 })
      .toBeGreaterThan(0.01);
    const bottom = await page.locator('main').evaluate((main) => main.getBoundingClientRect().bottom);
    await page.screenshot({ path: join(ARTIFACTS, 'grid.png'), clip: { x: 0, y: 0, width: 1280, height: Math.ceil(bottom) } });
    console.log(`thumbnail pixels changed: ${(share * 100).toFixed(2)}%`);
    // The player library is fetched only when a stream is watched, as a file of its own (rtmpd/console/build.ts
    // splits it out): were it in the app's bundle, the check would see no request and pass.
    const playerChunks = () => requests.filter((path) => /\/(mpegts|hls)[^/]*\.js$/.test(path));
    expect(playerChunks()).toEqual([]);
    await card('cam1').click();
    await expect.poll(playerChunks, { timeout: 10_000 }).toEqual([expect.stringMatching(/\/mpegts-[^/]*\.js$/)]);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/');
  });

  it('adds a stream that starts and drops one that stops, without a reload', async () => {
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
    const late = publishTestPattern(server.rtmpUrl('live', 'late'), { seconds: 60 });
    await expect.poll(() => card('late').locator('.thumb.loaded').count(), { timeout: THUMBNAIL_WAIT_MS }).toBe(1);
    await expect.poll(() => page.locator('#summary').innerText()).toMatch(/^3 live streams/);
    late.child.kill('SIGKILL');
    await expect.poll(() => card('late').count(), { timeout: 10_000 }).toBe(0);
    // A thumbnail asked for in the moment between a poll that still listed the stream and its end is
    // answered 404 (logged by the browser as an error): the one failure this test may cause.
    const snapshotOfLate = server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Flate/snapshot');
    const expected = (problem: string) => problem.includes(snapshotOfLate) && problem.includes('404');
    browser.problems.splice(0, Infinity, ...browser.problems.filter((problem) => !expected(problem)));
    expect(await page.locator('a.card').count()).toBe(2);
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  });

  it('filters the grid from the keyboard and opens a stream with Enter', async () => {
    await page.keyboard.press('/');
    await page.keyboard.type('cam2');
    await expect.poll(() => card('cam1').isVisible()).toBe(false);
    expect(await card('cam2').isVisible()).toBe(true);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-stream-id'))).toBe('rtmp/live/cam2');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/stream/rtmp%2Flive%2Fcam2');
    // The hash changes before its hashchange event draws the stream's page, whose key Escape is: wait for the page.
    await expect.poll(() => page.title()).toBe('live/cam2 · rtmpd');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/');
    await page.fill('input.filter', '');
  });

  it('plays a stream when its card is clicked, with live stats beside it', async () => {
    await card('cam1').click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/stream/rtmp%2Flive%2Fcam1');
    const video = page.locator('video');
    const playback = () =>
      video.evaluate((v: HTMLVideoElement) => ({ time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames }));
    await expect.poll(async () => (await playback()).time, { timeout: 15_000 }).toBeGreaterThan(0);
    const first = await playback();
    // Two seconds of the stream and 50 more frames shown (a busy machine may take longer than two seconds).
    await expect.poll(async () => (await playback()).time - first.time, { timeout: 15_000 }).toBeGreaterThan(2);
    await expect.poll(async () => (await playback()).frames - first.frames, { timeout: 15_000 }).toBeGreaterThan(50);
    // The browser is the stream's one HTTP-FLV player, and the page says so.
    await expect.poll(async () => (await listStreams(server)).find((s) => s.key === 'cam1')?.players.http_flv).toBe(1);
    await expect.poll(() => page.locator('[data-stat="players"]').innerText(), { timeout: 5000 }).toBe('RTMP 0 · HTTP-FLV 1 · HLS 0');
    expect(await page.locator('[data-stat="resolution"]').innerText()).toBe('640×360');
    expect(await page.locator('[data-stat="video"]').innerText()).toMatch(/^H\.264 High/);
    expect(await page.locator('[data-stat="dropped"]').innerText()).toBe('0');
    // cam1 is forwarded nowhere: no forwards section; it is recorded: its recordings panel.
    expect(await page.getByRole('region', { name: 'Forwards' }).count()).toBe(0);
    await expect.poll(() => page.getByRole('heading', { name: 'Recordings' }).count()).toBe(1);
    await expect.poll(() => page.locator('.chart .line').first().getAttribute('points'), { timeout: 10_000 }).toMatch(/ /);
    await page.waitForTimeout(4000); // a few more chart points for the picture
    // The whole page, so the picture shows the addresses below the player too, RTMPS's beside RTMP's.
    expect(await page.getByRole('button', { name: 'Copy RTMPS', exact: true }).count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'player.png'), fullPage: true });
  });

  it('copies working URLs: OBS server and key, RTMP and RTMPS, HTTP-FLV and HTTPS-FLV, snapshot', async () => {
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.httpUrl('') });
    const copied = async (label: string) => {
      await page.getByRole('button', { name: `Copy ${label}`, exact: true }).click();
      return page.evaluate(() => navigator.clipboard.readText());
    };
    const rtmp = `rtmp://127.0.0.1:${server.rtmpPort}`;
    const rtmps = `rtmps://127.0.0.1:${rtmpsPort}`;
    const httpsFlv = `https://127.0.0.1:${httpsPort}/live/cam1.flv`;
    expect(await copied('OBS server')).toBe(`${rtmp}/live`);
    expect(await copied('OBS server (RTMPS)')).toBe(`${rtmps}/live`);
    expect(await copied('Stream key')).toBe('cam1');
    expect(await copied('RTMP')).toBe(`${rtmp}/live/cam1`);
    expect(await copied('RTMPS')).toBe(`${rtmps}/live/cam1`);
    expect(await copied('HTTP-FLV')).toBe(server.httpUrl('/live/cam1.flv'));
    expect(await copied('HTTPS-FLV')).toBe(httpsFlv);
    const snapshot = await copied('Snapshot');
    expect(snapshot).toBe(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam1/snapshot'));
    // And they lead to the stream (ffprobe takes the self-signed certificate as it is).
    for (const url of [`${rtmp}/live/cam1`, `${rtmps}/live/cam1`, server.httpUrl('/live/cam1.flv'), httpsFlv]) {
      expect(await probe(url)).toEqual(expect.arrayContaining([expect.objectContaining({ codec_name: 'h264', width: 640, height: 360 })]));
    }
    const jpeg = await fetch(snapshot);
    expect(jpeg.headers.get('content-type')).toBe('image/jpeg');
  });

  it('loaded over HTTPS, shows the HTTPS-FLV URL of its own origin and the plain HTTP one beside it', async () => {
    const origin = `https://127.0.0.1:${httpsPort}`;
    const secure = await browser.newPage();
    try {
      await secure.goto(`${origin}/#/stream/rtmp%2Flive%2Fcam2`);
      const field = (id: string) => secure.locator(`#url-${id}`);
      await expect.poll(() => field('https-flv').inputValue(), { timeout: 15_000 }).toBe(`${origin}/live/cam2.flv`);
      expect(await field('http-flv').inputValue()).toBe(server.httpUrl('/live/cam2.flv'));
      expect(await field('rtmps').inputValue()).toBe(`rtmps://127.0.0.1:${rtmpsPort}/live/cam2`);
    } finally {
      await secure.close();
    }
  });

  it("draws a deep link's view only once its settings are in, though its hash changes while they load", async () => {
    const deep = await browser.newPage();
    let settingsAsked!: () => void;
    const asked = new Promise<void>((resolve) => (settingsAsked = resolve));
    let releaseSettings!: () => void;
    const released = new Promise<void>((resolve) => (releaseSettings = resolve));
    await deep.route('**/console/settings.json', async (route) => {
      settingsAsked();
      await released;
      await route.continue();
    });
    try {
      await deep.goto(server.httpUrl('/#/'), { waitUntil: 'commit' });
      await asked;
      // The hash changes, and every hashchange listener has run, while settings.json is held back.
      await deep.evaluate(
        () =>
          new Promise<void>((resolve) => {
            window.addEventListener('hashchange', () => setTimeout(resolve), { once: true });
            location.hash = '#/stream/rtmp%2Flive%2Fcam1';
          }),
      );
      releaseSettings();
      const field = deep.locator('#url-rtmps');
      await expect.poll(() => field.inputValue(), { timeout: 15_000 }).toBe(`rtmps://127.0.0.1:${rtmpsPort}/live/cam1`);
      expect(browser.problems).toEqual([]);
    } finally {
      await deep.close();
    }
  });

  it('reads on a phone: nothing wider than the screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const hash of ['#/stream/rtmp%2Flive%2Fcam1', '#/']) {
      await page.evaluate((h) => (location.hash = h), hash);
      await page.waitForTimeout(500);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto('about:blank'); // the console's polling ends with its tests
  });
});

describe('forwards', () => {
  it("shows a stream's forward to a live rtmpd as sending and one to a closed port in backoff with its error", async () => {
    // Snapshots on: the grid asks for the cards' thumbnails.
    const quiet = ['--recording-enabled', 'false'];
    const destination = await startServer(quiet);
    const closedPort = await freePort();
    const rules = [{ app: 'live', urls: [`rtmp://127.0.0.1:${destination.rtmpPort}/in/{key}`, `rtmp://127.0.0.1:${closedPort}/in/{key}`] }];
    const source = await startServer([...quiet, '--forward-rules', JSON.stringify(rules), '--forward-retry-max-seconds', '4']);
    const publisher = publishTestPattern(source.rtmpUrl('live', 'relayed'), { seconds: 60, size: '320x240' });
    const forwardsPage = await browser.newPage();
    try {
      await waitForStream(destination, 'rtmp/in/relayed');
      await forwardsPage.goto(source.httpUrl('/#/stream/rtmp%2Flive%2Frelayed'));
      // What the page shows of each forward, read without waiting for elements that may never come.
      const shown = () =>
        forwardsPage.locator('.forward').evaluateAll((items: HTMLElement[]) =>
          items.map((item) => {
            const badge = item.querySelector<HTMLElement>('.state')!;
            const error = item.querySelector<HTMLElement>('.forward-error')!;
            return {
              destination: item.querySelector('.destination')!.textContent,
              state: badge.innerText,
              colour: getComputedStyle(badge).backgroundColor,
              sent: item.querySelector('.facts')!.textContent,
              error: error.hidden ? null : error.textContent,
            };
          }),
        );
      // Sending in the console's green (--ok), in backoff in its amber (--warn), with why.
      await expect.poll(shown, { timeout: 15_000 }).toEqual([
        {
          destination: `rtmp://127.0.0.1:${destination.rtmpPort}/in/***`,
          state: 'SENDING',
          colour: 'rgb(63, 185, 80)',
          sent: expect.stringMatching(/^\d+(\.\d)? [KM]iB sent · \d+ connections?$/),
          error: null,
        },
        {
          destination: `rtmp://127.0.0.1:${closedPort}/in/***`,
          state: 'BACKOFF',
          colour: 'rgb(210, 153, 34)',
          sent: expect.stringMatching(/^0 B sent · \d+ connections?$/),
          error: expect.stringMatching(/ECONNREFUSED/),
        },
      ]);
      // Recording is off on this server: no recordings panel.
      expect(await forwardsPage.getByRole('heading', { name: 'Recordings' }).count()).toBe(0);
      await forwardsPage.screenshot({ path: join(ARTIFACTS, 'forwards.png'), fullPage: true });
      // The grid's card says at a glance that the stream is forwarded and one forward fails, in amber.
      await forwardsPage.goto(source.httpUrl('/'));
      const badge = forwardsPage.locator('[data-stream-id="rtmp/live/relayed"] .forwarded');
      await expect.poll(() => badge.innerText(), { timeout: 10_000 }).toBe('→ 2 · 1 failing');
      expect(await badge.getAttribute('title')).toBe('Forwarded to 2 destinations, 1 failing');
      expect(await badge.evaluate((element) => getComputedStyle(element).backgroundColor)).toBe('rgb(210, 153, 34)');
      await forwardsPage.screenshot({ path: join(ARTIFACTS, 'forwards-grid.png') });
      // The destination's copy is forwarded nowhere: no badge on its card.
      await forwardsPage.goto(destination.httpUrl('/'));
      await forwardsPage.locator('[data-stream-id="rtmp/in/relayed"]').waitFor();
      expect(await forwardsPage.locator('[data-stream-id="rtmp/in/relayed"] .forwarded').isHidden()).toBe(true);
    } finally {
      await forwardsPage.close();
      publisher.child.kill('SIGKILL');
      await Promise.all([source.stop(), destination.stop()]);
    }
  }, 60_000);
});

describe('--snapshot-enabled false', () => {
  it('shows a placeholder for each thumbnail and asks for no snapshot', async () => {
    const noSnapshots = await startServer(['--snapshot-enabled', 'false']);
    const publisher = publishTestPattern(noSnapshots.rtmpUrl('live', 'plain'), { seconds: 60 });
    const plainPage = await browser.newPage();
    try {
      const snapshotRequests: string[] = [];
      plainPage.on('request', (request) => {
        if (request.url().endsWith('/snapshot')) snapshotRequests.push(request.url());
      });
      await waitForStream(noSnapshots, 'rtmp/live/plain');
      await plainPage.goto(noSnapshots.httpUrl('/'));
      const thumb = plainPage.locator('[data-stream-id="rtmp/live/plain"] .thumb');
      await expect.poll(() => thumb.getAttribute('data-unavailable'), { timeout: 10_000 }).toBe('snapshots are off');
      // Polls that would have asked for a thumbnail by now (every 2 s, once the stream has a keyframe).
      await expect.poll(() => plainPage.locator('#summary').innerText()).toMatch(/^1 live stream/);
      await plainPage.waitForTimeout(5000);
      expect(snapshotRequests).toEqual([]);
      expect(await thumb.evaluate((element) => getComputedStyle(element, '::after').content)).toBe('"snapshots are off"');
      // Nor is a snapshot URL offered to copy.
      await plainPage.locator('[data-stream-id="rtmp/live/plain"]').click();
      await plainPage.locator('button[aria-label="Copy RTMP"]').waitFor();
      expect(await plainPage.locator('button[aria-label="Copy Snapshot"]').count()).toBe(0);
      await plainPage.screenshot({ path: join(ARTIFACTS, 'no-snapshots.png') });
    } finally {
      await plainPage.close();
      publisher.child.kill('SIGKILL');
      await noSnapshots.stop();
    }
  }, 60_000);
});

describe('--console-enabled false', () => {
  it('leaves only the API', async () => {
    const apiOnly = await startServer(['--console-enabled', 'false']);
    try {
      const res = await fetch(apiOnly.httpUrl('/'));
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
      expect((await fetch(apiOnly.httpUrl('/console/settings.json'))).status).toBe(404);
      expect(await (await fetch(apiOnly.httpUrl('/api/v1/rtmp/streams'))).json()).toEqual({ streams: [] });
    } finally {
      await apiOnly.stop();
    }
  });
});
