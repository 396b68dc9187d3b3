import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import { until } from '../../test/support/wait.ts';
import { parseConfig } from '../config.ts';
import { pushFlvTags } from '../flv/publish.ts';
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
 * HLS alone on a real server (its flags from `hlsFlags`), live/cam published
 * (no media yet), and play rules that answer only once `allow()` is called: a
 * client can leave while it is being authorized.
 */
async function serve(hlsFlags: Record<string, unknown> = {}) {
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
  const hls = new HlsServer({ hub, config: parseConfig(hlsFlags), logger });
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
  return { hub, hls, url, authorizing, allow };
}

/** Time for the handler to run on after its authorization answered. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

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
      await until(() => hls.running('live', 'cam') !== undefined);
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

describe('HLS media URIs', () => {
  // A TS muxer answered seg-….m4s and part-…-0-0.m4s with its TS segment, and an fMP4 muxer seg-….ts with its fMP4 one.
  it.each([
    {
      variant: 'mpegts',
      lowLatency: false,
      listed: ['seg-I-0.ts'],
      other: ['seg-I-0.m4s', 'part-I-0-0.m4s', 'init-I-0.mp4', 'init-I-0.ts'],
    },
    {
      variant: 'fmp4',
      lowLatency: false,
      listed: ['seg-I-0.m4s', 'init-I-0.mp4'],
      other: ['seg-I-0.ts', 'init-I-0.m4s', 'part-I-0-0.m4s'],
    },
    { variant: 'fmp4', lowLatency: true, listed: ['part-I-0-0.m4s'], other: ['part-I-0-0.ts', 'part-I-0.m4s', 'seg-I-00.m4s'] },
  ])(
    'of $variant (low latency $lowLatency) are answered only as its playlist names them',
    async ({ variant, lowLatency, listed, other }) => {
      const { hub, hls, url } = await serve({ hlsVariant: variant, hlsLowLatency: lowLatency, hlsSegmentSeconds: 1 });
      const { tags } = await readFlvFile(new URL('../flv/testdata/h264_aac.flv', import.meta.url).pathname);
      const stream = hub.publish('live', 'clip', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
      const muxer = hls.muxer('live', 'clip');
      if (typeof muxer === 'string') throw new Error(`no HLS: ${muxer}`);
      pushFlvTags(stream, tags, performance.now());
      hub.unpublish(stream); // the muxer stays, its segments all complete
      const uri = (name: string) => url(`/live/clip/${name.replace('I', muxer.instance)}`);
      for (const name of listed) expect((await fetch(uri(name))).status, name).toBe(200);
      for (const name of other) {
        const res = await fetch(uri(name));
        expect(res.status, name).toBe(404);
        expect(await res.json(), name).toEqual({
          error: { code: 'not_found', message: expect.stringContaining('is not (or no longer) in the playlist') },
        });
      }
    },
  );
});
