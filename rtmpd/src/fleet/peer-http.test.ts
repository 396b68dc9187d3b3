import { mkdtemp } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLeaseApi } from '../../test/support/memory-lease-api.ts';
import { Authorizer } from '../auth/authorizer.ts';
import { parseConfig } from '../config.ts';
import { createHttpApp } from '../http/app.ts';
import { RecordingStore } from '../http/recording-store.ts';
import { listenHttp } from '../http/server.ts';
import { BitrateMeter } from '../hub/bitrate.ts';
import { StreamHub } from '../hub/hub.ts';
import { SnapshotService } from '../snapshot/service.ts';
import { FleetCatalog } from './catalog.ts';
import { FleetDirectory } from './directory.ts';
import { remoteRenditions } from './fleet.ts';
import { FleetRecordingIndex } from './recordings.ts';
import { claimLease, podLease } from './records.ts';

const fleet = 'edge';
const token = 'the-fleet-token-of-this-test';
const silent = pino({ level: 'silent' });
/** Longer than any wait below: a peer request still open after it was left to its timeout. */
const PEER_TIMEOUT_MS = 60_000;
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** A pod that takes requests and never answers them: `asked` when a request came, `gone` when its connection closed. */
async function silentPeer() {
  let asked!: () => void;
  let gone!: () => void;
  const peer = {
    asked: new Promise<void>((resolve) => (asked = resolve)),
    gone: new Promise<void>((resolve) => (gone = resolve)),
  };
  const port = await listen(
    createServer((req: IncomingMessage) => {
      req.socket.once('close', gone);
      asked();
    }),
  );
  return { ...peer, address: `127.0.0.1:${port}` };
}

/** edge-0 (this pod, its API served on `url`) in a fleet where edge-1, at `peer`, owns live/cam and holds recordings. */
async function podWithPeer(peer: string) {
  const api = memoryLeaseApi();
  const at = new Date().toISOString();
  const lease = { fleet, durationSeconds: 10, acquireTime: at, now: at, publishers: 1, players: 0, draining: false };
  await api.create(podLease({ ...lease, pod: 'edge-1', identity: 'edge-1_b', httpAddress: peer }));
  await api.create(claimLease({ fleet, streamId: 'rtmp/live/cam', protocol: 'rtmp', identity: 'edge-1_b', durationSeconds: 10, now: at }));
  const directory = new FleetDirectory({ api, fleet, log: silent });
  await directory.start();
  closers.push(() => directory.stop());

  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
  const bitrate = new BitrateMeter(hub);
  closers.push(() => bitrate.close());
  const store = new RecordingStore(await mkdtemp(join(tmpdir(), 'rtmpd-peer-http-')), {
    filesInUse: () => new Set(),
    finishing: () => undefined,
  });
  const mine = { directory, identity: 'edge-0_a', token, log: silent };
  const catalog = new FleetCatalog({ ...mine, local: () => ({ pod: 'edge-0', streams: [] }) });
  const recordings = new FleetRecordingIndex({
    ...mine,
    pod: 'edge-0',
    store,
    timeoutMs: PEER_TIMEOUT_MS,
    forwardTimeoutMs: PEER_TIMEOUT_MS,
  });
  const config = parseConfig({});
  const snapshots = new SnapshotService({ hub, logger: silent, config });
  const authorizer = await Authorizer.start({ config, hub, logger: silent });
  const app = createHttpApp({
    hub,
    snapshots,
    bitrate,
    logger: silent,
    playWaitMs: 0,
    authorizer,
    access: { config, tokens: () => undefined, onRefused: () => undefined },
    fleet: catalog,
    recordings: { store, fleet: recordings },
  });
  const server = await listenHttp(app, { ...config, httpBind: '127.0.0.1:0' });
  closers.push(
    () => authorizer.close(),
    () => snapshots.close(),
    () => server.close(1000),
  );
  const port = server.address().port;
  return { hub, directory, url: (path: string) => `http://127.0.0.1:${port}${path}` };
}

/** Whether `closed` comes within two seconds. */
const within2s = (closed: Promise<void>): Promise<boolean> =>
  Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000))]);

describe('a peer request made for a client', () => {
  it.each([
    ['a fleet-wide recordings list', '/api/v1/rtmp/recordings'],
    ['a VOD playlist of recordings on every pod', '/api/v1/rtmp/recordings/playlist.m3u8?stream_id=rtmp%2Flive%2Fcam'],
    ['a download of a recording another pod holds', '/api/v1/rtmp/recordings/edge-1/live/cam/2026-11-30T10-00-00.000Z.mp4'],
    ['a snapshot of a stream another pod owns', '/api/v1/rtmp/streams/rtmp%2Flive%2Fcam/snapshot'],
  ])('is cut when the client leaves %s', async (_what, path) => {
    const peer = await silentPeer();
    const { url } = await podWithPeer(peer.address);
    const client = request(url(path));
    client.on('error', () => undefined);
    client.end();
    await peer.asked;
    client.destroy();
    expect(await within2s(peer.gone)).toBe(true);
  });

  it('is cut when the player waiting for a rendition another pod transcodes leaves', async () => {
    const peer = await silentPeer();
    const { hub, directory } = await podWithPeer(peer.address);
    const left = new AbortController();
    const arrival = remoteRenditions(hub, directory, 'edge-0_a', token).arrival('live', 'cam', 'cam_low', PEER_TIMEOUT_MS, left.signal);
    await peer.asked;
    left.abort();
    expect(await within2s(peer.gone)).toBe(true);
    await arrival;
  });
});
