import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { METHODS, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Authorizer } from '../auth/authorizer.ts';
import { signedQuery } from '../auth/signed-url.ts';
import type { AuthRule } from '../auth/rules.ts';
import { parseConfig, type Config } from '../config.ts';
import { FlvDemuxer } from '../flv/demux.ts';
import { BitrateMeter } from '../hub/bitrate.ts';
import { StreamHub } from '../hub/hub.ts';
import { SnapshotService } from '../snapshot/service.ts';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import { createHttpApp } from './app.ts';
import { jsonErrors } from './errors.ts';
import { metricsRoute } from './metrics-route.ts';
import { noQuery } from './query.ts';
import type { Router } from './required-modules.ts';
import { lazyRouters, routerFor, type RouteGroup } from './routing.ts';
import { streamView } from './stream-view.ts';
import type { FleetStreams } from './streams-api.ts';
import { listenHttp, type HttpServer } from './server.ts';

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

interface ServeOptions {
  snapshotEnabled?: boolean;
  playWaitMs?: number;
  authRules?: AuthRule[];
  tokens?: string[];
  access?: Partial<Pick<Config, 'apiReadAccess' | 'metricsAccess'>>;
  /** /metrics (on an empty registry) by default, as rtmpd mounts it. */
  routes?: Router[];
  fleet?: FleetStreams;
}

const noMetrics = metricsRoute({ contentType: 'text/plain', scrape: () => Promise.resolve(Buffer.alloc(0)) });

async function serve({
  snapshotEnabled = true,
  playWaitMs = 0,
  authRules = [],
  tokens,
  access = {},
  routes = [noMetrics],
  fleet,
}: ServeOptions = {}) {
  const hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const snapshots = new SnapshotService({
    hub,
    logger,
    config: {
      keyframeDir: '/nonexistent',
      snapshotEnabled,
      snapshotIntervalSeconds: 0,
      snapshotKeep: 1,
      snapshotWidth: 0,
      snapshotQuality: 5,
      snapshotConcurrency: 1,
      snapshotTimeoutSeconds: 10,
      ffmpegPath: 'ffmpeg',
      maxDecodePixels: 1920 * 1080,
    },
  });
  const bitrate = new BitrateMeter(hub);
  const authorizer = await Authorizer.start({ config: { authRules }, hub, logger });
  const config = { apiReadAccess: 'open', metricsAccess: 'open', ...access } as const;
  const app = createHttpApp({
    hub,
    snapshots,
    bitrate,
    logger,
    playWaitMs,
    authorizer,
    access: { config, tokens: () => tokens, onRefused: (reason) => authorizer.countRefusal('api', reason) },
    routes,
    fleet,
  });
  const server: HttpServer = await listenHttp(app, { ...parseConfig({}), httpBind: '127.0.0.1:0' });
  cleanup = async () => {
    authorizer.close();
    hub.closeAll();
    await server.close(1000);
    snapshots.close();
    bitrate.close();
  };
  const url = (path: string) => `http://127.0.0.1:${server.address().port}${path}`;
  return { hub, url, authorizer };
}

/** One request by node:http, which sends the methods fetch refuses to (TRACE); its status, Allow and JSON body. */
function ask(url: string, method: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; allow: string | undefined; body: unknown }>((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode!, allow: res.headers.allow, body: JSON.parse(Buffer.concat(chunks).toString()) as unknown }),
      );
      res.on('error', reject);
    });
    req.on('error', reject).end();
  });
}

describe('HTTP app', () => {
  it('lists streams in the original shape plus tracks, players and publisher', async () => {
    const { hub, url } = await serve();
    await publishFlv(hub, 'live', 'test123', clip);
    const body = (await (await fetch(url('/api/v1/rtmp/streams'))).json()) as { streams: Record<string, unknown>[] };
    expect(body.streams).toEqual([
      {
        stream_id: 'rtmp/live/test123',
        app: 'live',
        key: 'test123',
        start_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/),
        video: { codec: 'h264', profile: 'High', level: expect.any(String), width: 320, height: 180, fps: 25 },
        audio: { codec: 'aac', profile: 'LC', sample_rate: 44100, channels: 1 },
        bitrate_kbps: expect.any(Number),
        bytes_in: expect.any(Number),
        video_frames: 50,
        keyframes: 2,
        dropped_frames: 0,
        players: { rtmp: 0, http_flv: 0, hls: 0, total: 0 },
        hls_url: null,
        recording: false,
        recording_state: 'off',
        recording_left_out: [],
        publisher: { protocol: 'rtmp', remote_address: null },
        owner: null,
        forwards: [],
        transcode: null,
        transcoded_from: null,
      },
    ]);
  });

  it('starts an HTTP-FLV viewer at the last keyframe and ends it when the stream ends', async () => {
    const { hub, url } = await serve({ playWaitMs: 5000 });
    const response = fetch(url('/live/cam.flv'));
    // The viewer waits for the publisher (playWaitMs) and gets metadata, sequence headers and the GOP.
    const { stream } = await publishFlv(hub, 'live', 'cam', clip);
    const res = await response;
    expect(res.status).toBe(200);
    setTimeout(() => hub.unpublish(stream), 100);
    const demuxer = new FlvDemuxer();
    const tags = demuxer.push(Buffer.from(await res.arrayBuffer()));
    demuxer.end();
    expect(demuxer.header).toMatchObject({ hasAudio: true, hasVideo: true });
    expect(tags[0]?.kind).toBe('data');
    const firstFrame = tags.find((t) => t.kind === 'video' && t.body[1] === 1);
    expect(firstFrame && firstFrame.body[0]! >> 4).toBe(1); // a keyframe first
    expect(stream.subscriberCount).toBe(0);
  });

  it('answers 409 when snapshots are disabled and 404 before any video', async () => {
    const disabled = await serve({ snapshotEnabled: false });
    await publishFlv(disabled.hub, 'live', 'cam', clip);
    const res = await fetch(disabled.url('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam/snapshot'));
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: { code: 'snapshots_disabled' } });
    await cleanup?.();
    const enabled = await serve();
    enabled.hub.publish('live', 'silent', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: () => {} });
    const noVideo = await fetch(enabled.url('/api/v1/rtmp/streams/rtmp%2Flive%2Fsilent/snapshot'));
    expect(noVideo.status).toBe(404);
    expect(await noVideo.json()).toMatchObject({
      error: { code: 'no_video', message: expect.stringMatching(/no video has been received/) },
    });
  });

  it('answers 503 decode_failed for a malformed avcC the relay tolerated', async () => {
    const { hub, url } = await serve();
    const stream = hub.publish('live', 'broken', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: () => {} });
    // An AVC sequence header whose avcC announces a 0x50-byte SPS and ends, then an IDR frame.
    stream.pushVideo(0, Buffer.from([0x17, 0, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x50, 0x67]), 0);
    stream.pushVideo(40, Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x10]), 0);
    expect(stream.stats.parseErrors).toBe(1);
    expect(stream.lastKeyframe).toBeDefined();
    const res = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Fbroken/snapshot'));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: 'decode_failed', message: expect.stringMatching(/could not decode/) } });
  });
});

describe('HTTP API access', () => {
  const token = 'a-token-of-sufficient-length';
  const bearer = { authorization: `Bearer ${token}` };

  it('keeps reads open by default, hides publisher addresses without a token, and needs one to kick', async () => {
    const { hub, url, authorizer } = await serve({ tokens: [token] });
    await publishFlv(hub, 'live', 'cam', clip);
    const anonymous = (await (await fetch(url('/api/v1/rtmp/streams'))).json()) as { streams: { publisher: unknown }[] };
    expect(anonymous.streams[0]?.publisher).toEqual({ protocol: 'rtmp', remote_address: null });
    const trusted = (await (await fetch(url('/api/v1/rtmp/streams'), { headers: bearer })).json()) as { streams: { publisher: unknown }[] };
    expect(trusted.streams[0]?.publisher).toEqual({ protocol: 'rtmp', remote_address: '127.0.0.1:50000' });

    for (const [method, path] of [
      ['DELETE', '/api/v1/rtmp/streams/rtmp%2Flive%2Fcam'],
      ['GET', '/api/v1/auth/revocations'],
      ['PUT', '/api/v1/auth/revocations/rtmp%2Flive%2Fcam'],
      ['DELETE', '/api/v1/auth/revocations/rtmp%2Flive%2Fcam'],
    ]) {
      const res = await fetch(url(path!), { method });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd"');
      expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringContaining('Bearer') } });
    }
    const wrong = await fetch(url('/api/v1/rtmp/streams'), { headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
    // RFC 6750: a token was presented, and it is not a good one
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd", error="invalid_token"');
    expect(await wrong.json()).toMatchObject({ error: { code: 'bad_token' } });
    expect(authorizer.stats.refusals['api missing_token']).toBe(4);
    expect(authorizer.stats.refusals['api bad_token']).toBe(1);
    expect((await fetch(url('/health'), { headers: { authorization: 'Bearer wrong' } })).status).toBe(200);

    const kicked = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam?ban_seconds=60'), { method: 'DELETE', headers: bearer });
    expect(kicked.status).toBe(200);
    expect(await kicked.json()).toEqual({ kicked: 'rtmp/live/cam', revoked_until: expect.stringMatching(/Z$/) });
    expect(authorizer.stats.ended.kicked).toBe(1);
    const list = (await (await fetch(url('/api/v1/auth/revocations'), { headers: bearer })).json()) as { revocations: unknown[] };
    expect(list.revocations).toEqual([{ stream_id: 'rtmp/live/cam', app: 'live', key: 'cam', until: expect.any(String) }]);
    expect((await fetch(url('/api/v1/auth/revocations/rtmp%2Flive%2Fcam'), { method: 'DELETE', headers: bearer })).status).toBe(204);
    const badBan = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Fnone?ban_seconds=-1'), { method: 'DELETE', headers: bearer });
    // The query is checked at the edge, before the stream is looked up.
    expect(badBan.status).toBe(400);
  });

  it('answers a stream id that could never be published with a 400 saying why, on every route that takes one', async () => {
    const { url } = await serve({ tokens: [token] });
    const long = 'k'.repeat(200);
    for (const [method, path, why] of [
      ['GET', '/api/v1/rtmp/streams/rtmp%2Flive%2Fca%00m', 'stream key "ca\0m"'],
      ['GET', '/api/v1/rtmp/streams/rtmp/live/.cam', 'stream key ".cam"'],
      ['GET', `/api/v1/rtmp/streams/rtmp%2Flive%2F${long}/snapshot`, '(200 characters)'],
      ['GET', '/api/v1/rtmp/streams/rtmp/api/cam/snapshot', 'reserved'],
      ['DELETE', '/api/v1/rtmp/streams/rtmp%2F..%2Fcam', 'app ".."'],
      ['PUT', '/api/v1/auth/revocations/rtmp%2Flive%2F..', 'stream key ".."'],
      ['DELETE', '/api/v1/auth/revocations/rtmp/live/.cam', 'stream key ".cam"'],
    ]) {
      const res = await fetch(url(path!), { method, headers: bearer });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(await res.json(), `${method} ${path}`).toEqual({
        error: { code: 'invalid_stream_id', message: expect.stringContaining(why!) },
      });
    }
  });

  it("refuses a route declared with an access without it, wherever its path is: the route's entry decides", async () => {
    const route = (path: string, access: 'token' | 'read' | 'metrics') =>
      ({ method: 'get', paths: [path], summary: path, access, query: noQuery, ok: { 204: { description: 'done', empty: true } } }) as const;
    const group = {
      token: route('/custom/token', 'token'),
      read: route('/custom/read', 'read'),
      metrics: route('/custom/metrics', 'metrics'),
    } satisfies RouteGroup;
    const done = (ctx: { status: number }) => void (ctx.status = 204);
    const { url } = await serve({
      tokens: [token],
      access: { apiReadAccess: 'token', metricsAccess: 'token' },
      routes: [routerFor(group, { token: done, read: done, metrics: done })],
    });
    for (const path of ['/custom/token', '/custom/read', '/custom/metrics']) {
      const refused = await fetch(url(path));
      expect(refused.status, path).toBe(401);
      expect(refused.headers.get('www-authenticate'), path).toBe('Bearer realm="rtmpd"');
      expect((await fetch(url(path), { headers: bearer })).status, path).toBe(204);
    }
  });

  it('answers a method a path does not take with a JSON 405 and an Allow header that names those it does', async () => {
    const token = 'a-token-of-sufficient-length';
    const { hub, url } = await serve({ tokens: [token] });
    await publishFlv(hub, 'live', 'cam', clip);
    const cases: [method: string, path: string, allow: string][] = [
      ['POST', '/health', 'HEAD, GET'],
      ['DELETE', '/ready', 'HEAD, GET'],
      ['PUT', '/api/v1/rtmp/streams', 'HEAD, GET'],
      ['POST', '/api/v1/rtmp/streams/rtmp%2Flive%2Fcam', 'HEAD, GET, DELETE'],
      ['POST', '/api/v1/auth/revocations/rtmp%2Flive%2Fcam', 'PUT, DELETE'],
      ['DELETE', '/live/cam.flv', 'HEAD, GET'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(url(path), { method, headers: { authorization: `Bearer ${token}` } });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(await res.json(), `${method} ${path}`).toEqual({
        error: { code: 'method_not_allowed', message: `${path.split('?')[0]} takes ${allow}, not ${method}` },
      });
    }
    // A path that is no route stays a 404.
    expect((await fetch(url('/nothing/here/at/all'), { method: 'POST' })).status).toBe(404);
  });

  it("answers every method Node's parser takes (a scanner's TRACE, PROPFIND) on a path it serves with a JSON 405, never a 5xx", async () => {
    const token = 'a-token-of-sufficient-length';
    const { url } = await serve({ tokens: [token] });
    const paths: [path: string, allow: string][] = [
      ['/health', 'HEAD, GET'],
      ['/metrics', 'HEAD, GET'],
      ['/api/v1/rtmp/streams', 'HEAD, GET'],
      ['/live/cam.flv', 'HEAD, GET'],
    ];
    // CONNECT never reaches the app (server.ts answers it 405); OPTIONS is answered 200 with Allow.
    const others = (allow: string) => METHODS.filter((m) => m !== 'CONNECT' && m !== 'OPTIONS' && !allow.split(', ').includes(m));
    for (const [path, allow] of paths) {
      for (const method of others(allow)) {
        const res = await ask(url(path), method, { authorization: `Bearer ${token}` });
        expect(res, `${method} ${path}`).toEqual({
          status: 405,
          allow,
          body: { error: { code: 'method_not_allowed', message: `${path} takes ${allow}, not ${method}` } },
        });
      }
    }
    for (const method of ['TRACE', 'PROPFIND', 'SEARCH']) {
      const res = await ask(url('/nothing/here/at/all'), method);
      expect(res, method).toEqual({
        status: 404,
        allow: undefined,
        body: { error: { code: 'not_found', message: `no route for ${method} /nothing/here/at/all` } },
      });
    }
  });

  it('answers HEAD where it answers GET: the same status and headers, no body', async () => {
    const { url } = await serve();
    for (const path of ['/health', '/ready', '/api/v1/rtmp/streams', '/api/v1/openapi.json']) {
      const [get, head] = [await fetch(url(path)), await fetch(url(path), { method: 'HEAD' })];
      await get.arrayBuffer();
      expect(head.status, path).toBe(get.status);
      expect(head.headers.get('content-type'), path).toBe(get.headers.get('content-type'));
      expect(await head.text(), path).toBe('');
    }
  });

  it("answers a HEAD of a .flv with its GET's status and headers, no body, and ends the response", async () => {
    const { hub, url } = await serve();
    // curl -I sends each HEAD over the one kept-alive connection: the second is answered only if the first ended.
    const heads = async () =>
      (await promisify(execFile)('curl', ['-sSI', '--max-time', '10', url('/live/cam.flv'), url('/live/cam.flv')])).stdout;
    expect(await heads()).toMatch(/^HTTP\/1\.1 404 Not Found\r\n(.+\r\n)+\r\nHTTP\/1\.1 404 Not Found\r\n/);
    const { stream } = await publishFlv(hub, 'live', 'cam', clip);
    const live = await heads();
    expect(live.split('\r\n\r\n')).toEqual([
      expect.stringMatching(/^HTTP\/1\.1 200 OK\r\n(.+\r\n)*content-type: video\/x-flv\r\n/i),
      expect.stringMatching(/^HTTP\/1\.1 200 OK\r\n(.+\r\n)*cache-control: no-cache, no-store\r\n/i),
      '',
    ]);
    expect(stream.subscriberCount).toBe(0);
  });

  it('answers a CORS preflight before authorization, and lets any origin read the answers', async () => {
    const { url } = await serve({ tokens: [token], access: { apiReadAccess: 'token' } });
    const preflight = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam'), {
      method: 'OPTIONS',
      headers: {
        origin: 'https://dashboard.example',
        'access-control-request-method': 'DELETE',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(Object.fromEntries([...preflight.headers].filter(([name]) => name.startsWith('access-control-')))).toEqual({
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, HEAD, PUT, DELETE, OPTIONS',
      'access-control-allow-headers': 'authorization',
      'access-control-max-age': '600',
    });
    const read = await fetch(url('/api/v1/rtmp/streams'), { headers: { origin: 'https://dashboard.example', ...bearer } });
    expect(read.status).toBe(200);
    expect(read.headers.get('access-control-allow-origin')).toBe('*');
    // Errors too, so a page can show why it was refused.
    const refused = await fetch(url('/api/v1/rtmp/streams'), { headers: { origin: 'https://dashboard.example' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('protects reads and /metrics when asked, and refuses state changes when no token is configured', async () => {
    const locked = await serve({ tokens: [token], access: { apiReadAccess: 'token', metricsAccess: 'token' } });
    for (const path of ['/api/v1/rtmp/streams', '/metrics']) {
      const res = await fetch(locked.url(path));
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate'), path).toBe('Bearer realm="rtmpd"');
    }
    expect((await fetch(locked.url('/api/v1/rtmp/streams'), { headers: bearer })).status).toBe(200);
    expect((await fetch(locked.url('/health'))).status).toBe(200);
    await cleanup?.();
    const tokenless = await serve();
    const res = await fetch(tokenless.url('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam'), { method: 'DELETE' });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: 'api_token_not_configured' } });
  });

  it('puts HTTP-FLV players through the play rules: 401 without a credential, 403 with a bad one', async () => {
    const keys = join(await mkdtemp(join(tmpdir(), 'rtmpd-http-keys-')), 'keys.yaml');
    await writeFile(keys, 'cam: viewer-secret\n');
    const { hub, url, authorizer } = await serve({
      authRules: [
        { method: 'open', app: 'live', key: 'public', actions: ['play'] },
        { method: 'keys', app: 'live', key: 'cam', actions: ['play'], keys },
      ],
    });
    await publishFlv(hub, 'live', 'cam', clip);
    await publishFlv(hub, 'live', 'public', clip);
    const missing = await fetch(url('/live/cam.flv'));
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd"');
    expect(await missing.json()).toEqual({
      error: { code: 'missing_credentials', message: "playing live/cam needs the stream key's ?secret= (missing credentials)" },
    });
    expect((await fetch(url('/live/cam.flv?secret=guess'))).status).toBe(403);
    expect((await fetch(url('/live/other.flv'))).status).toBe(403);
    expect(authorizer.stats.refusals).toMatchObject({ 'play missing_credentials': 1, 'play bad_secret': 1, 'play no_matching_rule': 1 });
    for (const path of ['/live/public.flv', '/live/cam.flv?secret=viewer-secret']) {
      const res = await fetch(url(path));
      expect(res.status, path).toBe(200);
      await res.body?.cancel();
    }
  });
});

describe('lazily loaded routers', () => {
  const group = {
    item: {
      method: 'get',
      paths: ['/lazy/item'],
      summary: 'item',
      access: 'open',
      query: noQuery,
      ok: { 204: { description: 'done', empty: true } },
    },
  } satisfies RouteGroup;
  const router = (paths = group.item.paths) => routerFor({ item: { ...group.item, paths } }, { item: (ctx) => void (ctx.status = 204) });

  async function serveLazy(load: () => Promise<Router[]>) {
    const app = new Koa();
    app.use(jsonErrors(logger));
    app.use(lazyRouters('/lazy/', load));
    const server: HttpServer = await listenHttp(app, { ...parseConfig({}), httpBind: '127.0.0.1:0' });
    cleanup = () => server.close(1000);
    return (path: string, method = 'GET') => fetch(`http://127.0.0.1:${server.address().port}${path}`, { method });
  }

  it('load at the first request under their prefix, once, and answer as mounted routers do', async () => {
    let loads = 0;
    const request = await serveLazy(() => {
      loads++;
      return Promise.resolve([router()]);
    });
    expect((await request('/elsewhere')).status).toBe(404);
    expect((await request('/health')).status).toBe(404);
    expect(loads).toBe(0);
    const [first, second] = await Promise.all([request('/lazy/item'), request('/lazy/item')]);
    expect([first.status, second.status]).toEqual([204, 204]);
    const wrongMethod = await request('/lazy/item', 'DELETE');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('HEAD, GET');
    expect((await request('/lazy/nothing')).status).toBe(404);
    expect(loads).toBe(1);
  });

  it('try a failed load again at the next request, and refuse a route outside their prefix', async () => {
    let loads = 0;
    const request = await serveLazy(() => (++loads === 1 ? Promise.reject(new Error('no chunk')) : Promise.resolve([router()])));
    expect((await request('/lazy/item')).status).toBe(500);
    expect((await request('/lazy/item')).status).toBe(204);
    expect(loads).toBe(2);
    await cleanup?.();
    const outside = await serveLazy(() => Promise.resolve([router(['/lazy/item', '/other/item'])]));
    expect((await outside('/lazy/item')).status).toBe(500);
  });
});

describe('play credentials over HTTP', () => {
  it("answers a malformed one with the 403 of its method's bad credential, before any lookup or signature check", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-http-credentials-'));
    await writeFile(join(dir, 'keys.yaml'), 'cam: viewer-secret\n');
    await writeFile(join(dir, 'hmac'), 'k3y\n');
    const { hub, url } = await serve({
      authRules: [
        { method: 'keys', app: 'live', key: 'cam', actions: ['play'], keys: join(dir, 'keys.yaml') },
        { method: 'signed', app: 'live', key: 'signed', actions: ['play'], secretFile: join(dir, 'hmac') },
      ],
    });
    await publishFlv(hub, 'live', 'signed', clip);
    const expires = Math.floor(Date.now() / 1000) + 60;
    // Signed as it is, but `ip` is no address: a bad signature, not an address that differs from the client's.
    const notAnAddress = signedQuery('k3y', { action: 'play', app: 'live', key: 'signed', expires, ip: 'not-an-address' });
    for (const [path, code] of [
      [`/live/signed.flv?${notAnAddress}`, 'bad_signature'],
      [`/live/signed.flv?exp=${expires}&sig=${'a'.repeat(44)}`, 'bad_signature'],
      [`/live/cam.flv?secret=${'s'.repeat(1025)}`, 'bad_secret'],
    ] as const) {
      const res = await fetch(url(path));
      expect(res.status, path).toBe(403);
      expect(await res.json(), path).toMatchObject({ error: { code } });
    }
  });
});

describe('HTTP API query parameters', () => {
  const token = 'a-token-of-sufficient-length';
  const bearer = { authorization: `Bearer ${token}` };
  const refusal = (parameter: string) => ({ error: { code: 'bad_request', message: expect.stringContaining(`"${parameter}"`) } });

  it('refuses unknown, repeated and invalid parameters with a JSON 400 naming the parameter', async () => {
    const { hub, url, authorizer } = await serve({ tokens: [token] });
    await publishFlv(hub, 'live', 'cam', clip);
    const cases: [method: string, path: string, parameter: string][] = [
      ['GET', '/health?verbose=1', 'verbose'],
      ['GET', '/ready?verbose=1', 'verbose'],
      ['GET', '/api/v1/rtmp/streams?app=live', 'app'],
      ['GET', '/api/v1/rtmp/streams/rtmp%2Flive%2Fcam?fields=video', 'fields'],
      ['GET', '/api/v1/rtmp/streams/rtmp/live/cam?fields=video', 'fields'],
      ['GET', '/api/v1/rtmp/streams/rtmp%2Flive%2Fcam/snapshot?width=100', 'width'],
      ['DELETE', '/api/v1/rtmp/streams/rtmp%2Flive%2Fcam?ban=60', 'ban'],
      ['DELETE', '/api/v1/rtmp/streams/rtmp%2Flive%2Fcam?ban_seconds=60&ban_seconds=120', 'ban_seconds'],
      ['DELETE', '/api/v1/rtmp/streams/rtmp/live/cam?ban_seconds=soon', 'ban_seconds'],
      ['GET', '/api/v1/auth/revocations?app=live', 'app'],
      ['PUT', '/api/v1/auth/revocations/rtmp%2Flive%2Fcam?ban_seconds=60', 'ban_seconds'],
      ['PUT', '/api/v1/auth/revocations/rtmp%2Flive%2Fcam?seconds=1&seconds=2', 'seconds'],
      ['PUT', '/api/v1/auth/revocations/rtmp/live/cam?seconds=0', 'seconds'],
      ['DELETE', '/api/v1/auth/revocations/rtmp%2Flive%2Fcam?seconds=60', 'seconds'],
      // Only decimal digits are a number: z.coerce took these as 0, 1000, 16, 60 and 5.
      ...['', '1e3', '0x10', '%2060%20', '%2B5', '60.0'].flatMap((value): [string, string, string][] => [
        ['DELETE', `/api/v1/rtmp/streams/rtmp%2Flive%2Fcam?ban_seconds=${value}`, 'ban_seconds'],
        ['PUT', `/api/v1/auth/revocations/rtmp%2Flive%2Fcam?seconds=${value}`, 'seconds'],
      ]),
    ];
    for (const [method, path, parameter] of cases) {
      const res = await fetch(url(path), { method, headers: bearer });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(await res.json(), `${method} ${path}`).toEqual(refusal(parameter));
    }
    const soon = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam?ban_seconds=soon'), { method: 'DELETE', headers: bearer });
    expect(await soon.json()).toEqual({
      error: { code: 'bad_request', message: 'query parameter "ban_seconds": expected a whole number from 1 to 2592000 in decimal digits' },
    });
    // Nothing was done on a refused request: the publisher is still live, no key revoked.
    expect(hub.byId('rtmp/live/cam')).toBeDefined();
    expect(authorizer.listRevocations()).toEqual([]);
  });

  it('refuses a request body, which no API endpoint reads, and takes an empty one', async () => {
    const { hub, url, authorizer } = await serve({ tokens: [token] });
    await publishFlv(hub, 'live', 'cam', clip);
    const json = { ...bearer, 'content-type': 'application/json' };
    const revoke = await fetch(url('/api/v1/auth/revocations/rtmp%2Flive%2Fcam'), { method: 'PUT', headers: json, body: '{"seconds":60}' });
    expect(revoke.status).toBe(400);
    expect(await revoke.json()).toEqual({ error: { code: 'bad_request', message: expect.stringContaining('takes no request body') } });
    const kick = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam'), {
      method: 'DELETE',
      headers: json,
      body: '{"ban_seconds":60}',
    });
    expect(kick.status).toBe(400);
    expect(hub.byId('rtmp/live/cam')).toBeDefined();
    expect(authorizer.listRevocations()).toEqual([]);
    const empty = await fetch(url('/api/v1/auth/revocations/rtmp%2Flive%2Fcam?seconds=60'), {
      method: 'PUT',
      headers: { ...bearer, 'content-length': '0' },
    });
    expect(empty.status).toBe(200);
  });

  it('still takes what players add to HTTP-FLV URLs', async () => {
    const { hub, url } = await serve();
    await publishFlv(hub, 'live', 'cam', clip);
    const res = await fetch(url('/live/cam.flv?t=1732870000&token=abc'));
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });
});

describe('HTTP API input properties', () => {
  const token = 'a-token-of-sufficient-length';

  it('answers any method, stream id and query with a JSON 4xx or a success, never a 5xx', async () => {
    const { hub, url } = await serve({ tokens: [token], playWaitMs: 0 });
    await publishFlv(hub, 'live', 'cam', clip);
    const segment = fc.oneof(
      fc.string({ maxLength: 30, unit: 'binary' }).map(encodeURIComponent),
      fc.constantFrom('rtmp%2Flive%2Fcam', 'rtmp%2Flive', '%ZZ', '%00', '..', '%2F%2F', 'rtmp%2F%2F', 'a'.repeat(300)),
    );
    const query = fc.oneof(
      fc.constant(''),
      fc
        .tuple(
          fc.constantFrom('ban_seconds', 'seconds', 'token', 'jwt'),
          fc.oneof(fc.string({ maxLength: 12 }).map(encodeURIComponent), fc.constantFrom('-1', '1e309', '0x10', '999999999999', 'NaN')),
        )
        .map(([k, v]) => `?${k}=${v}`),
    );
    const path = fc.oneof(
      fc.tuple(segment, query).map(([id, q]) => `/api/v1/rtmp/streams/${id}${q}`),
      fc.tuple(segment, query).map(([id, q]) => `/api/v1/rtmp/streams/${id}/snapshot${q}`),
      fc.tuple(segment, query).map(([id, q]) => `/api/v1/auth/revocations/${id}${q}`),
      fc.tuple(segment, segment, query).map(([app, key, q]) => `/api/v1/rtmp/streams/rtmp/${app}/${key}${q}`),
      fc.tuple(segment, segment, query).map(([app, key, q]) => `/${app}/${key}.flv${q}`),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'PUT', 'DELETE', 'POST', 'PATCH'), path, fc.boolean(), async (method, p, withToken) => {
        const res = await fetch(url(p), { method, headers: withToken ? { authorization: `Bearer ${token}` } : {} });
        const body = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.arrayBuffer();
        expect(res.status, `${method} ${p}`).toBeLessThan(500);
        if (res.status >= 400)
          expect(body, `${method} ${p}`).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
      }),
      { numRuns: 300 },
    );
    // 300 requests: 2.4 s at a load average of 1.5, 9-17 s at 13, past 30 s at 25.
  }, 120_000);
});

describe('kicks', () => {
  const token = 'a-token-of-sufficient-length';
  const bearer = { authorization: `Bearer ${token}` };

  it('revoke the key for the ban_seconds asked, from now', async () => {
    const { hub, url } = await serve({ tokens: [token] });
    await publishFlv(hub, 'live', 'cam', clip);
    const before = Date.now();
    const kicked = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam?ban_seconds=60'), { method: 'DELETE', headers: bearer });
    const { revoked_until: until } = (await kicked.json()) as { revoked_until: string };
    expect(Date.parse(until)).toBeGreaterThanOrEqual(before + 60_000);
    expect(Date.parse(until)).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it('refuse a stream relayed from the pod that owns it with a 409 naming that pod, and leave it live', async () => {
    const { hub, url, authorizer } = await serve({ tokens: [token] });
    hub.publish('live', 'relayed', { protocol: 'relay', remoteAddress: '10.0.0.2:8082', close: () => undefined });
    const res = await fetch(url('/api/v1/rtmp/streams/rtmp%2Flive%2Frelayed'), { method: 'DELETE', headers: bearer });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: { code: 'not_owner' } });
    expect(hub.byId('rtmp/live/relayed')?.isEnded).toBe(false);
    expect(authorizer.stats.ended.kicked ?? 0).toBe(0);
  });

  it('in a fleet, hide the publisher addresses of the fleet-wide list from a caller without a token', async () => {
    // The fleet's catalog as a pod of one sees it: its own streams, addresses included (fleet/catalog.ts needs a kube-apiserver).
    const fleet: FleetStreams = {
      list: () => Promise.resolve(served.hub.list().map((stream) => streamView(stream, 0, true))),
      snapshot: () => Promise.resolve(undefined),
    };
    const served = await serve({ tokens: [token], fleet });
    await publishFlv(served.hub, 'live', 'cam', clip);
    const list = async (headers = {}) =>
      ((await (await fetch(served.url('/api/v1/rtmp/streams'), { headers })).json()) as { streams: { publisher: unknown }[] }).streams;
    expect((await list())[0]?.publisher).toEqual({ protocol: 'rtmp', remote_address: null });
    expect((await list(bearer))[0]?.publisher).toEqual({ protocol: 'rtmp', remote_address: '127.0.0.1:50000' });
  });
});
