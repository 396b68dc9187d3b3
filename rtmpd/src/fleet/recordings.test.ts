import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { memoryLeaseApi } from '../../test/support/memory-lease-api.ts';
import { RecordingStore } from '../http/recording-store.ts';
import type { RecordingView } from '../http/recordings-api.ts';
import { BitrateMeter } from '../hub/bitrate.ts';
import { StreamHub } from '../hub/hub.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import { FleetDirectory } from './directory.ts';
import { FleetRecordingIndex, mergePages, podRecordings, validPage, type PodRecordingPage } from './recordings.ts';
import { podLease, podLeaseName } from './records.ts';
import { fleetRoutes } from './routes.ts';

const view = (pod: string, name: string): RecordingView & { pod: string } => {
  const id = `${pod}/live/cam/${name}`;
  const start = name.replace(/T(\d\d)-(\d\d)-/, 'T$1:$2:').replace(/\.mp4$/, '');
  return {
    id,
    stream_id: 'rtmp/live/cam',
    app: 'live',
    key: 'cam',
    format: 'fmp4',
    start_time: start,
    end_time: start,
    duration_seconds: 0,
    size_bytes: 1,
    recording: false,
    url: `/api/v1/rtmp/recordings/${encodeURIComponent(id)}`,
    pod,
  };
};
const page = (recordings: RecordingView[], more = false) => ({ recordings, more }) as PodRecordingPage;
const T1 = '2026-11-24T07-30-00.000Z.mp4';
const T2 = '2026-11-24T07-40-00.000Z.mp4';
const T3 = '2026-11-24T07-50-00.000Z.mp4';

describe('merging the pods’ recording pages', () => {
  it('orders every pod’s recordings by start time, then by pod, and names the pods that did not answer', () => {
    const merged = mergePages(
      new Map([
        ['edge-1', page([view('edge-1', T1), view('edge-1', T3)])],
        ['edge-2', undefined],
        ['edge-0', page([view('edge-0', T1), view('edge-0', T2)])],
      ]),
      10,
    );
    expect(merged.recordings.map((r) => r.id)).toEqual([
      `edge-0/live/cam/${T1}`,
      `edge-1/live/cam/${T1}`,
      `edge-0/live/cam/${T2}`,
      `edge-1/live/cam/${T3}`,
    ]);
    expect(merged.unreachable_pods).toEqual(['edge-2']);
    expect(merged.next_page_token).toBeNull();
  });

  it('cuts the merged list at the limit and gives the last id as the next page token', () => {
    const merged = mergePages(
      new Map([
        ['a', page([view('a', T1), view('a', T3)])],
        ['b', page([view('b', T2)])],
      ]),
      2,
    );
    expect(merged.recordings.map((r) => r.id)).toEqual([`a/live/cam/${T1}`, `b/live/cam/${T2}`]);
    expect(Buffer.from(merged.next_page_token!, 'base64url').toString()).toBe(`b/live/cam/${T2}`);
  });

  it('has a next page when a pod said it has more, even within the limit', () => {
    const merged = mergePages(new Map([['a', page([view('a', T1)], true)]]), 5);
    expect(merged.next_page_token).not.toBeNull();
  });
});

describe('a pod’s answer', () => {
  const body = (v: unknown) => Buffer.from(JSON.stringify(v));
  it('is taken when valid and every recording is of the pod asked', () => {
    expect(validPage('edge-1', body(page([view('edge-1', T1)])))?.recordings).toHaveLength(1);
  });
  it('is refused when it names recordings of another pod, is malformed or is not JSON', () => {
    expect(validPage('edge-1', body(page([view('edge-2', T1)])))).toBeUndefined();
    expect(validPage('edge-1', body({ recordings: [{ ...view('edge-1', T1), size_bytes: -1 }], more: false }))).toBeUndefined();
    expect(validPage('edge-1', body({ recordings: 'x', more: false }))).toBeUndefined();
    expect(validPage('edge-1', Buffer.from('<html>'))).toBeUndefined();
  });
});

describe('one pod’s page', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-recordings-'));
    await mkdir(join(dir, 'live', 'cam'), { recursive: true });
    for (const name of [T1, T2, T3]) await writeFile(join(dir, 'live', 'cam', name), 'not media');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const storeOf = (path: string) => new RecordingStore(path, { filesInUse: () => new Set(), finishing: () => undefined });

  it('qualifies ids and URLs with the pod and starts after the cursor', async () => {
    const store = storeOf(dir);
    const first = await podRecordings(store, 'edge-0', { stream_id: 'rtmp/live/cam', limit: 2 });
    expect(first.recordings.map((r) => [r.id, r.pod])).toEqual([
      [`edge-0/live/cam/${T1}`, 'edge-0'],
      [`edge-0/live/cam/${T2}`, 'edge-0'],
    ]);
    expect(first.recordings[0]?.url).toBe(`/api/v1/rtmp/recordings/${encodeURIComponent(`edge-0/live/cam/${T1}`)}`);
    expect(first.more).toBe(true);
    // A cursor from another pod at the same start time as T2: edge-0 sorts before edge-1, so T2 is past.
    const next = await podRecordings(store, 'edge-0', { limit: 2, after: `edge-1/live/cam/${T2}` });
    expect(next.recordings.map((r) => r.id)).toEqual([`edge-0/live/cam/${T3}`]);
    expect(next.more).toBe(false);
  });

  // An API server under load times out the renewals of a pod that still serves its recordings.
  it('refuses a page_token no page gave out with a 400 naming it, before any pod is asked', async () => {
    const presentPods = vi.fn(() => []);
    const directory = { presentPods } as unknown as FleetDirectory;
    const index = new FleetRecordingIndex({
      directory,
      pod: 'edge-0',
      identity: 'me',
      token: 't',
      store: storeOf(dir),
      log: pino({ level: 'silent' }),
    });
    for (const id of ['garbage', 'edge-1/live/cam/not-a-recording', `/live/cam/${T2}`, `edge-1/live/../${T2}`, `live/cam/${T2}`]) {
      const page_token = Buffer.from(id).toString('base64url');
      await expect(index.list({ limit: 10, page_token }), id).rejects.toMatchObject({
        status: 400,
        code: 'bad_request',
        message: expect.stringContaining('"page_token"'),
      });
    }
    expect(presentPods).not.toHaveBeenCalled();
    const valid = Buffer.from(`edge-1/live/cam/${T2}`).toString('base64url');
    expect(await index.list({ limit: 10, page_token: valid })).toMatchObject({ recordings: [] });
  });

  it('is asked of a pod whose Lease exists, seen renewed lately or not, and no more once its Lease is gone', async () => {
    const token = 'the-fleet-token-of-this-test';
    const hub = new StreamHub({ gopCacheMaxBytes: 0, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
    const bitrate = new BitrateMeter(hub);
    const app = new Koa();
    app.silent = true;
    const routes = fleetRoutes({
      hub,
      // Not asked for: only the recordings are.
      snapshots: {} as SnapshotService,
      bitrate,
      sources: {},
      recordings: storeOf(dir),
      renditionPublished: () => Promise.resolve(),
      pod: 'edge-1',
      token,
    });
    app.use(routes.routes());
    const server = createServer(app.callback()).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    let clock = 0;
    const api = memoryLeaseApi();
    const at = new Date().toISOString();
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const lease = { fleet: 'edge', durationSeconds: 10, acquireTime: at, now: at, publishers: 0, players: 0, draining: false };
    await api.create(podLease({ ...lease, pod: 'edge-1', identity: 'edge-1_b', httpAddress: address }));
    const silent = pino({ level: 'silent' });
    const directory = new FleetDirectory({ api, fleet: 'edge', log: silent, now: () => clock });
    await directory.start();
    try {
      clock = 60_000;
      const empty = storeOf(await mkdtemp(join(tmpdir(), 'fleet-recordings-none-')));
      const index = new FleetRecordingIndex({ directory, pod: 'edge-0', identity: 'edge-0_a', token, store: empty, log: silent });
      const listed = await index.list({ limit: 10 });
      expect(listed.recordings.map((r) => r.id)).toEqual([T1, T2, T3].map((name) => `edge-1/live/cam/${name}`));
      expect(listed.unreachable_pods).toEqual([]);

      await api.delete(podLeaseName('edge-1'));
      await directory.refreshPod(podLeaseName('edge-1'));
      expect(await index.list({ limit: 10 })).toEqual({ recordings: [], next_page_token: null, unreachable_pods: [] });
    } finally {
      directory.stop();
      server.close();
      bitrate.close();
    }
  });
});
