import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import type { FleetDirectory } from './directory.ts';
import type { ClaimRecord, PodRecord } from './records.ts';
import { Relays } from './relays.ts';

const flv = readFileSync(new URL('../flv/testdata/h264_aac.flv', import.meta.url));
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
    const relays = new Relays({ hub, directory: directoryOwnedAt(await owner()), identity: 'this-pod', token: 't', log });
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

describe('a subscriber on a pod that does not own the stream', () => {
  const silent = pino({ level: 'silent' });
  const hubWithRelaysTo = (address: string) => {
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    const relays = new Relays({ hub, directory: directoryOwnedAt(address), identity: 'this-pod', token: 't', log: silent });
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
