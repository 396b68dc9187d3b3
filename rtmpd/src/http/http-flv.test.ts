import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config.ts';
import { StreamHub } from '../hub/hub.ts';
import { streamId } from '../hub/names.ts';
import type { AdmissionLease } from '../rtmp/server/admission.ts';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import { jsonErrors } from './errors.ts';
import { httpFlvRoute, type HttpFlvOptions } from './http-flv.ts';
import { listenHttp } from './server.ts';

const logger = pino({ level: 'silent' });
let clip: string;
let cleanup: (() => Promise<void>) | undefined;

beforeAll(async () => {
  clip = await lavfiClip({ width: 320, height: 180, seconds: 2 });
});

afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** An admission lease that counts what its holder does with it. */
function countingLease(): AdmissionLease & { attached: number; released: number } {
  const lease = {
    attached: 0,
    released: 0,
    attach: () => void lease.attached++,
    release: () => void lease.released++,
  };
  return lease;
}

/** HTTP-FLV alone on a real server; `stop` closes every connection, so every response has closed once it resolves. */
async function serve(playWaitMs: number, authorizePlay: HttpFlvOptions['authorizePlay']) {
  const hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const app = new Koa();
  app.silent = true;
  app.use(jsonErrors(logger));
  const router = httpFlvRoute({ hub, playWaitMs, authorizePlay });
  app.use(router.routes()).use(router.allowedMethods());
  const server = await listenHttp(app, { ...parseConfig({}), httpBind: '127.0.0.1:0' });
  const stop = async () => {
    hub.closeAll();
    await server.close(1000);
  };
  cleanup = stop;
  const url = (path: string) => `http://127.0.0.1:${server.address().port}${path}`;
  return { hub, url, stop };
}

describe('HTTP-FLV admission leases', () => {
  it('gives the lease back once when the stream did not come within the play wait (404)', async () => {
    const lease = countingLease();
    const { url, stop } = await serve(100, () => Promise.resolve(lease));
    const res = await fetch(url('/live/cam.flv'));
    expect(res.status).toBe(404);
    expect((await res.json()) as unknown).toMatchObject({ error: { code: 'stream_not_found' } });
    await stop();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('gives the lease back once when the viewer leaves while waiting for the publisher', async () => {
    const lease = countingLease();
    const { hub, url, stop } = await serve(60_000, () => Promise.resolve(lease));
    const viewer = new AbortController();
    const res = fetch(url('/live/cam.flv'), { signal: viewer.signal });
    await vi.waitFor(() => expect(hub.awaited(streamId('live', 'cam'))).toBe(true), { timeout: 10_000 });
    viewer.abort();
    await expect(res).rejects.toThrow();
    await vi.waitFor(() => expect(hub.awaited(streamId('live', 'cam'))).toBe(false), { timeout: 10_000 });
    await stop();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('gives back a lease granted after the viewer left, once, and does not wait for the publisher then', async () => {
    const lease = countingLease();
    let asked!: () => void;
    const authorizing = new Promise<void>((resolve) => (asked = resolve));
    // The check answers only once the viewer has gone, as a slow callback would.
    const authorizePlay = async (_ctx: unknown, _app: string, _key: string, signal: AbortSignal) => {
      asked();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return lease;
    };
    const { hub, url, stop } = await serve(60_000, authorizePlay);
    const viewer = new AbortController();
    const res = fetch(url('/live/cam.flv'), { signal: viewer.signal });
    await authorizing;
    viewer.abort();
    await expect(res).rejects.toThrow();
    await vi.waitFor(() => expect(lease.released).toBe(1), { timeout: 10_000 });
    expect(hub.awaited(streamId('live', 'cam'))).toBe(false);
    await stop();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('answers a HEAD without subscribing a player, and gives its lease back once', async () => {
    const lease = countingLease();
    const { hub, url, stop } = await serve(0, () => Promise.resolve(lease));
    const { stream } = await publishFlv(hub, 'live', 'cam', clip);
    const unsubscribe = vi.spyOn(stream, 'unsubscribe');
    const res = await fetch(url('/live/cam.flv'), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/x-flv');
    await stop();
    expect(unsubscribe).not.toHaveBeenCalled();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('attaches the lease to a viewer that plays, and gives it back once, unsubscribed, when it leaves', async () => {
    const lease = countingLease();
    const { hub, url, stop } = await serve(0, () => Promise.resolve(lease));
    const { stream } = await publishFlv(hub, 'live', 'cam', clip);
    const res = await fetch(url('/live/cam.flv'));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect(Buffer.from((await reader.read()).value!.subarray(0, 3)).toString()).toBe('FLV');
    expect(stream.subscriberCount).toBe(1);
    await reader.cancel();
    await vi.waitFor(() => expect(stream.subscriberCount).toBe(0), { timeout: 10_000 });
    await stop();
    expect(lease).toMatchObject({ attached: 1, released: 1 });
  });
});
