import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLeaseApi } from '../../test/support/memory-lease-api.ts';
import { StreamHub } from '../hub/hub.ts';
import { FleetDirectory } from './directory.ts';
import { claimLease, podLease, podLeaseName, type ClaimRecord, type PodRecord } from './records.ts';
import { Relays } from './relays.ts';

const flv = readFileSync(new URL('../flv/testdata/h264_aac.flv', import.meta.url));
/** --max-message-bytes of the pods in these tests: 64 KiB, its least. */
const maxTagBytes = 64 * 1024;
const closers: (() => void)[] = [];
afterEach(() => closers.splice(0).forEach((close) => close()));

/** An owner pod's relay endpoint: the FLV file, then the response stays open as a live stream's does. */
const live = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'video/x-flv' });
  res.write(flv);
};

/** An owner pod whose stream has just ended: its claim is still there, its relay endpoint answers 404. */
const ended = (_req: IncomingMessage, res: ServerResponse) => res.writeHead(404).end();

async function owner(answer: (req: IncomingMessage, res: ServerResponse) => void = live): Promise<string> {
  const server: Server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () => server.closeAllConnections(),
    () => server.close(),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A directory in which `live/cam` is owned by the pod at `address`. */
const directoryOwnedAt = (address: string) =>
  ({
    owner: () => ({ claim: { identity: 'owner-pod' } as ClaimRecord, pod: { httpAddress: address } as PodRecord }),
    livePod: () => ({ httpAddress: address }) as PodRecord,
    on: () => undefined,
    off: () => undefined,
  }) as unknown as FleetDirectory;

describe('a relay from the owner pod', () => {
  it('ends, logged, when a bug of ours throws on its media, and the process goes on', async () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    hub.on('described', () => {
      throw new TypeError('a listener of ours broke');
    });
    const logged: { msg: string; why?: string; err?: { message: string } }[] = [];
    const log = pino({}, { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) });
    const relays = new Relays({ hub, directory: directoryOwnedAt(await owner()), identity: 'this-pod', token: 't', log, maxTagBytes });
    closers.push(
      () => relays.close(),
      () => hub.closeAll(),
    );

    expect(relays.pull('live', 'cam')?.aborted).toBe(false);
    for (const deadline = Date.now() + 5000; relays.active > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    expect(relays.active).toBe(0);
    expect(hub.get('live', 'cam')).toBeUndefined();
    expect(logged.find((l) => l.msg === 'fleet: relay failed on the media')?.err?.message).toBe('a listener of ours broke');
    expect(logged.find((l) => l.msg === 'fleet: relay ended')?.why).toBe('failed on the media: a listener of ours broke');
  });
});

describe('a relay from a peer that sends a tag over --max-message-bytes', () => {
  it('ends at its 11-byte header, logged and counted as tag_too_large, without holding its body', async () => {
    const header = flv.subarray(0, 13); // FLV header and PreviousTagSize0
    // A video tag header declaring 16 MiB - 1, then its body dribbled and never finished.
    const tagHeader = Buffer.from([9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
    let writes: NodeJS.Timeout | undefined;
    const hostile = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'video/x-flv' });
      res.write(Buffer.concat([header, tagHeader]));
      writes = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 5);
    };
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    const logged: { msg: string; why?: string; reason?: string }[] = [];
    const log = pino({}, { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) });
    const relays = new Relays({
      hub,
      directory: directoryOwnedAt(await owner(hostile)),
      identity: 'this-pod',
      token: 't',
      log,
      maxTagBytes,
    });
    closers.push(
      () => clearInterval(writes),
      () => relays.close(),
      () => hub.closeAll(),
    );

    relays.pull('live', 'cam');
    for (const deadline = Date.now() + 5000; relays.active > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    expect(relays.active).toBe(0);
    expect(relays.failures).toEqual({ tag_too_large: 1, bad_flv: 0, media: 0 });
    expect(logged.find((l) => l.msg === 'fleet: relay ended')).toMatchObject({
      reason: 'tag_too_large',
      why: `the owner sent an FLV tag of ${0xffffff} bytes, over --max-message-bytes ${maxTagBytes}`,
    });
  });
});

describe('a subscriber on a pod that does not own the stream', () => {
  const silent = pino({ level: 'silent' });
  const hubWithRelaysTo = (address: string, o: { identity?: string; lingerMs?: number } = {}) => {
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    const relays = new Relays({
      hub,
      directory: directoryOwnedAt(address),
      identity: 'this-pod',
      token: 't',
      log: silent,
      maxTagBytes,
      ...o,
    });
    hub.remote = relays;
    closers.push(
      () => relays.close(),
      () => hub.closeAll(),
    );
    return { hub, relays };
  };
  /** What `arrival` answered and after how many ms. */
  const timedArrival = async (hub: StreamHub, waitMs: number) => {
    const started = performance.now();
    const stream = await hub.arrival('live', 'cam', waitMs);
    return { stream, ms: performance.now() - started };
  };

  it('gets the stream relayed from its owner', async () => {
    const { hub, relays } = hubWithRelaysTo(await owner());
    const { stream } = await timedArrival(hub, 0);
    expect(stream?.id).toBe('rtmp/live/cam');
    expect(relays.active).toBe(1);
  });

  it('ends the relay, and the stream here, once nobody has watched it for lingerMs', async () => {
    const { hub, relays } = hubWithRelaysTo(await owner(), { lingerMs: 100 });
    expect((await timedArrival(hub, 0)).stream?.id).toBe('rtmp/live/cam');
    // The sweep runs every second.
    for (const deadline = Date.now() + 5000; relays.active > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
    expect(relays.active).toBe(0);
    expect(hub.get('live', 'cam')).toBeUndefined();
  });

  it('never relays from itself: a claim this pod holds is not pulled', async () => {
    const { relays } = hubWithRelaysTo(await owner(), { identity: 'owner-pod' });
    expect(relays.pull('live', 'cam')).toBeUndefined();
    expect(relays.started).toBe(0);
  });

  // Each would wait the relay's 5 s arrivalMs if the failed pull did not end the wait.
  it('hears "not live" at once when the owner answers 404 (its stream has just ended)', async () => {
    const { hub, relays } = hubWithRelaysTo(await owner(ended));
    const { stream, ms } = await timedArrival(hub, 0);
    expect(stream).toBeUndefined();
    expect(ms).toBeLessThan(relays.arrivalMs - 1000);
  });

  it('hears "not live" at once when the owner refuses the connection', async () => {
    const closedPort = await owner();
    closers.splice(0).forEach((close) => close());
    const { hub, relays } = hubWithRelaysTo(closedPort);
    const { stream, ms } = await timedArrival(hub, 0);
    expect(stream).toBeUndefined();
    expect(ms).toBeLessThan(relays.arrivalMs - 1000);
  });

  it('still waits out its own play wait after the pull failed, and gets a publish made meanwhile', async () => {
    const { hub, relays } = hubWithRelaysTo(await owner(ended));
    const waiting = timedArrival(hub, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(relays.active).toBe(0); // the pull has failed; the subscriber waits on
    hub.publish('live', 'cam', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: () => undefined });
    const { stream, ms } = await waiting;
    expect(stream?.id).toBe('rtmp/live/cam');
    expect(ms).toBeLessThan(relays.arrivalMs);
  });
});

describe('the owner as this pod’s watch of the Leases last saw it', () => {
  const fleet = 'edge';
  const holder = 'edge-0_a';
  const silent = pino({ level: 'silent' });

  /** edge-0 owns live/cam and live/cam2; this pod's clock is then moved past its Lease's duration with no renewal seen. */
  async function ownerNotSeenRenewed(address: string) {
    let clock = 0;
    const api = memoryLeaseApi();
    const at = new Date().toISOString();
    const fields = { fleet, pod: 'edge-0', identity: holder, httpAddress: address, durationSeconds: 10, acquireTime: at, now: at };
    await api.create(podLease({ ...fields, publishers: 2, players: 0, draining: false }));
    for (const streamId of ['rtmp/live/cam', 'rtmp/live/cam2'])
      await api.create(claimLease({ fleet, streamId, protocol: 'rtmp', identity: holder, durationSeconds: 10, now: at }));
    const directory = new FleetDirectory({ api, fleet, log: silent, now: () => clock });
    await directory.start();
    clock = 60_000;
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    const relays = new Relays({ hub, directory, identity: 'edge-1_b', token: 't', log: silent, maxTagBytes });
    hub.remote = relays;
    closers.push(
      () => relays.close(),
      () => hub.closeAll(),
      () => directory.stop(),
    );
    return { api, directory, hub, relays };
  }

  // An API server under load times out the owner's renewals while the owner serves on (a kind run at load 25
  // answered "not live" to one play of twenty this way).
  it('is still relayed from when no renewal was seen for longer than the Lease’s duration', async () => {
    const { directory, hub, relays } = await ownerNotSeenRenewed(await owner());
    expect(directory.livePod(holder)).toBeUndefined();
    const stream = await hub.arrival('live', 'cam', 0);
    expect(stream?.id).toBe('rtmp/live/cam');
    expect(relays.started).toBe(1);
  });

  it('is not asked once its pod Lease is gone (a pod deleted, or its process restarted)', async () => {
    const { api, directory, hub, relays } = await ownerNotSeenRenewed(await owner());
    await api.delete(podLeaseName('edge-0'));
    await directory.refreshPod(podLeaseName('edge-0'));
    expect(await hub.arrival('live', 'cam2', 0)).toBeUndefined();
    expect(relays.started).toBe(0);
  });
});
