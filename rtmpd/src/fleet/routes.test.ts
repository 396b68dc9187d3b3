import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jsonErrors } from '../http/errors.ts';
import { RecordingStore } from '../http/recording-store.ts';
import { BitrateMeter } from '../hub/bitrate.ts';
import { StreamHub } from '../hub/hub.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import type { Logger } from '../telemetry/logger.ts';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import type { FleetDirectory } from './directory.ts';
import { FleetRecordingIndex } from './recordings.ts';
import type { PodRecord } from './records.ts';
import { fleetRoutes, podStreams, sameToken } from './routes.ts';
import { podStreamsSchema, type PodStreams } from './wire.ts';

describe('the fleet token', () => {
  it('matches only the same token, whatever the lengths', () => {
    expect(sameToken('Bearer abc', 'Bearer abc')).toBe(true);
    expect(sameToken('Bearer abd', 'Bearer abc')).toBe(false);
    expect(sameToken('', 'Bearer abc')).toBe(false);
    expect(sameToken('Bearer abc'.repeat(100), 'Bearer abc')).toBe(false);
  });
});

describe("a pod's stream list, as another pod reads it", () => {
  const hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const bitrate = new BitrateMeter(hub);
  let answer: PodStreams;

  beforeAll(async () => {
    await publishFlv(hub, 'live', 'cam', await lavfiClip({ width: 320, height: 180, seconds: 1 }));
    answer = JSON.parse(JSON.stringify(podStreams({ hub, bitrate, sources: {}, pod: 'edge-0' }))) as PodStreams;
  });
  afterAll(() => bitrate.close());

  it('is accepted as a pod sends it', () => {
    expect(podStreamsSchema.parse(answer)).toEqual(answer);
    expect(answer.streams[0]?.view).toMatchObject({ stream_id: 'rtmp/live/cam', video: { width: 320 } });
  });

  it('is refused when a field is missing, of the wrong type, out of range or too long', () => {
    const view = answer.streams[0]!.view;
    const withView = (changed: object) => ({ ...answer, streams: [{ relayed: false, view: { ...view, ...changed } }] });
    const { players: _, ...withoutPlayers } = view;
    for (const bad of [
      { ...answer, streams: [{ relayed: false, view: withoutPlayers }] },
      withView({ bytes_in: -1 }),
      withView({ keyframes: '3' }),
      withView({ start_time: 'yesterday' }),
      withView({ recording_state: 'maybe' }),
      withView({ app: 'a'.repeat(2000) }),
      { ...answer, streams: 'none' },
    ])
      expect(podStreamsSchema.safeParse(bad).success).toBe(false);
  });
});

describe("another pod's recordings, asked over /fleet/v1", () => {
  const token = 'the-fleet-token-of-this-test';
  const hub = new StreamHub({ gopCacheMaxBytes: 0, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
  const bitrate = new BitrateMeter(hub);
  let server: ReturnType<Koa['listen']>;
  let address: string;
  let store: RecordingStore;

  beforeAll(async () => {
    store = new RecordingStore(await mkdtemp(join(tmpdir(), 'rtmpd-fleet-recordings-')), {
      filesInUse: () => new Set(),
      finishing: () => undefined,
    });
    const app = new Koa();
    app.use(jsonErrors(pino({ level: 'silent' })));
    const routes = fleetRoutes({
      hub,
      snapshots: {} as SnapshotService,
      bitrate,
      sources: {},
      recordings: store,
      renditionPublished: () => Promise.resolve(),
      pod: 'edge-1',
      token,
    });
    app.use(routes.routes()).use(routes.allowedMethods({ throw: true }));
    app.silent = true;
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.close();
    bitrate.close();
  });

  it('answers every parameter a pod sends, and refuses one it does not take', async () => {
    const pod = (name: string, identity: string) => ({ pod: name, identity, httpAddress: address }) as PodRecord;
    const directory = { presentPods: () => [pod('edge-0', 'me'), pod('edge-1', 'other')] } as unknown as FleetDirectory;
    const warn = vi.fn();
    const index = new FleetRecordingIndex({ directory, pod: 'edge-0', identity: 'me', token, store, log: { warn } as unknown as Logger });
    const selection = { stream_id: 'rtmp/live/cam', app: 'live', key: 'cam', start: Date.parse('2026-11-29T00:00:00Z'), end: Date.now() };
    const after = Buffer.from('edge-1/live/cam/2026-11-29T00-00-00.000Z.mp4').toString('base64url');
    const list = await index.list({ ...selection, limit: 10, page_token: after });
    expect(list).toEqual({ recordings: [], next_page_token: null, unreachable_pods: [] });
    await index.vod(selection);
    expect(warn).not.toHaveBeenCalled();

    const refused = await fetch(`http://${address}/fleet/v1/recordings?from=abc`, { headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: { code: 'bad_request', message: expect.stringContaining('"from"') } });
  });

  it("answers a client without the fleet's token 401 before reading its request, and a pod's abusive requests with a JSON 4xx", async () => {
    const ask = async (path: string, authorization?: string, method = 'GET') => {
      const res = await fetch(`http://${address}${path}`, { method, headers: authorization === undefined ? {} : { authorization } });
      return {
        status: res.status,
        body: (await res.json()) as { error: { code: string } },
        challenge: res.headers.get('www-authenticate'),
      };
    };
    const paths = [
      '/fleet/v1/streams',
      '/fleet/v1/relay/live/cam.flv',
      '/fleet/v1/snapshot/live/cam',
      '/fleet/v1/renditions/live/cam_low?wait_ms=1000',
      // Its query is wrong too: a client without the token learns nothing of what the route takes.
      '/fleet/v1/recordings?from=abc',
      '/fleet/v1/recordings/vod?stream_id=rtmp%2Flive%2Fcam',
      '/fleet/v1/recordings/live/cam/2026-11-29T00-00-00.000Z.mp4',
    ];
    const wrong = [
      '',
      `Bearer ${token}x`,
      `Bearer ${token.slice(0, -1)}`,
      `bearer ${token}`,
      token,
      `Basic ${token}`,
      `Bearer ${'x'.repeat(8000)}`,
    ];
    for (const path of paths)
      for (const authorization of wrong) {
        const answer = await ask(path, authorization);
        expect(answer.status, `${path} with "${authorization.slice(0, 40)}"`).toBe(401);
        expect(answer.body.error.code).toBe('fleet_token_required');
        expect(answer.challenge).toMatch(/^Bearer realm="rtmpd-fleet"/);
      }
    expect((await ask('/fleet/v1/recordings/live/cam/2026-11-29T00-00-00.000Z.mp4', undefined, 'DELETE')).status).toBe(401);

    const bearer = `Bearer ${token}`;
    const abusive: [path: string, status: number, code: string][] = [
      ['/fleet/v1/recordings?limit=1001', 400, 'bad_request'],
      ['/fleet/v1/recordings?limit=1&limit=2', 400, 'bad_request'],
      [`/fleet/v1/recordings?limit=10&after=${'a'.repeat(1025)}`, 400, 'bad_request'],
      ['/fleet/v1/recordings/vod?stream_id=..%2F..%2Fetc', 400, 'bad_request'],
      ['/fleet/v1/recordings/vod?start=yesterday', 400, 'bad_request'],
      ['/fleet/v1/recordings/vod?start=5', 400, 'bad_request'],
      // In UTC the year 10000, which the pods of a fleet would be asked with as +010000-01-01T04:00:00.000Z.
      ['/fleet/v1/recordings/vod?end=9999-12-31T23:00:00-05:00', 400, 'bad_request'],
      ['/fleet/v1/recordings?limit=1e3', 400, 'bad_request'],
      ['/fleet/v1/recordings?limit=%2010', 400, 'bad_request'],
      ['/fleet/v1/renditions/live/nobody_low?wait_ms=', 400, 'bad_request'],
      ['/fleet/v1/renditions/live/nobody_low?wait_ms=0x10', 400, 'bad_request'],
      ['/fleet/v1/streams?x=1', 400, 'bad_request'],
      ['/fleet/v1/relay/live/..%2F..%2Fcam.flv', 400, 'invalid_stream_name'],
      [`/fleet/v1/relay/live/${'k'.repeat(200)}.flv`, 400, 'invalid_stream_name'],
      ['/fleet/v1/relay/live/nobody.flv', 404, 'stream_not_found'],
      ['/fleet/v1/snapshot/live/nobody', 404, 'stream_not_found'],
      ['/fleet/v1/renditions/live/nobody_low?wait_ms=0', 404, 'stream_not_found'],
      ['/fleet/v1/renditions/live/nobody_low?wait_ms=60001', 400, 'bad_request'],
      ['/fleet/v1/renditions/live/nobody_low', 400, 'bad_request'],
      ['/fleet/v1/renditions/live/..%2Fcam?wait_ms=0', 400, 'invalid_stream_name'],
      ['/fleet/v1/recordings/live/cam/..%2F..%2F..%2Fetc%2Fpasswd', 404, 'recording_not_found'],
      ['/fleet/v1/recordings/live/cam/2026-11-29T00-00-00.000Z.mp4', 404, 'recording_not_found'],
    ];
    for (const [path, status, code] of abusive) {
      const answer = await ask(path, bearer);
      expect({ path, status: answer.status, code: answer.body.error.code }).toEqual({ path, status, code });
    }
    expect((await ask('/fleet/v1/streams', bearer)).status).toBe(200);
  });
});
