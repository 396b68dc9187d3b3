import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config.ts';
import { HlsServer } from '../hls/server.ts';
import { StreamHub } from '../hub/hub.ts';
import { jsonErrors } from './errors.ts';
import { hlsRoutes } from './hls.ts';
import { listenHttp } from './server.ts';

const logger = pino({ level: 'silent' });
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/**
 * HLS alone on a real server, live/cam published (no media yet), and play
 * rules that answer only once `allow()` is called: a client can leave while
 * it is being authorized.
 */
async function serve() {
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
  const hls = new HlsServer({ hub, config: parseConfig({}), logger });
  hub.publish('live', 'cam', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
  let asked = (_left: AbortSignal) => {};
  /** The request's signal, aborted when the server sees its client leave. */
  const authorizing = new Promise<AbortSignal>((resolve) => (asked = resolve));
  let allow = () => {};
  const allowed = new Promise<void>((resolve) => (allow = resolve));
  const authorizePlay = async (_ctx: unknown, _app: string, _key: string, left: AbortSignal) => {
    asked(left);
    await allowed;
    return undefined;
  };
  const app = new Koa();
  app.silent = true;
  app.use(jsonErrors(logger));
  const router = hlsRoutes({ hls, authorizePlay });
  app.use(router.routes()).use(router.allowedMethods());
  const server = await listenHttp(app, { ...parseConfig({}), httpBind: '127.0.0.1:0' });
  cleanup = async () => {
    allow();
    hls.close();
    hub.closeAll();
    await server.close(1000);
  };
  const url = (path: string) => `http://127.0.0.1:${server.address().port}${path}`;
  return { hls, url, authorizing, allow };
}

/** Time for the handler to run on after its authorization answered. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

async function eventually(condition: () => boolean): Promise<boolean> {
  for (const deadline = Date.now() + 10_000; !condition() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
  return condition();
}

describe('an HLS playlist request whose client left while it was authorized', () => {
  for (const playlist of ['index.m3u8', 'master.m3u8']) {
    it(`starts no segmenter (${playlist})`, async () => {
      const { hls, url, authorizing, allow } = await serve();
      const leaves = new AbortController();
      const request = fetch(url(`/live/cam/${playlist}`), { signal: leaves.signal }).catch(() => 'left');
      const left = await authorizing;
      leaves.abort();
      expect(await request).toBe('left');
      if (!left.aborted) await new Promise((resolve) => left.addEventListener('abort', resolve));
      allow();
      await settle();
      expect(hls.running('live', 'cam')).toBeUndefined();
    });

    it(`starts the segmenter for a client that stays (${playlist})`, async () => {
      const { hls, url, authorizing, allow } = await serve();
      const leaves = new AbortController();
      const request = fetch(url(`/live/cam/${playlist}`), { signal: leaves.signal }).catch(() => 'left');
      await authorizing;
      allow();
      expect(await eventually(() => hls.running('live', 'cam') !== undefined)).toBe(true);
      leaves.abort(); // no media comes, so the playlist would wait for its first segment
      await request;
    });
  }
});

describe('a blocking playlist reload', () => {
  // z.coerce served an empty _HLS_msn as msn 0, and 1e3, 0x10, +5 and " 12 " as numbers.
  it('takes _HLS_msn and _HLS_part only in decimal digits, refused before the play rules', async () => {
    const { url } = await serve();
    const cases = ['', '1e3', '0x10', '%2B5', '%2012%20', '1.0'].flatMap((value) => [
      [`_HLS_msn=${value}`, '_HLS_msn'],
      [`_HLS_msn=1&_HLS_part=${value}`, '_HLS_part'],
    ]);
    for (const [query, parameter] of cases) {
      // The play rules never answer here: a request that got past the query would wait for them.
      const res = await fetch(url(`/live/cam/index.m3u8?${query}`), { signal: AbortSignal.timeout(5000) });
      expect(res.status, query).toBe(400);
      expect(await res.json(), query).toEqual({
        error: { code: 'bad_request', message: expect.stringContaining(`query parameter "${parameter}": expected a whole number`) },
      });
    }
  });
});
