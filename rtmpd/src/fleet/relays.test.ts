import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
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
async function owner(): Promise<string> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'video/x-flv' });
    res.write(flv);
  });
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

    expect(relays.pull('live', 'cam')).toBe(true);
    for (const deadline = Date.now() + 5000; relays.active > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    expect(relays.active).toBe(0);
    expect(hub.get('live', 'cam')).toBeUndefined();
    expect(logged.find((l) => l.msg === 'fleet: relay failed on the media')?.err?.message).toBe('a listener of ours broke');
    expect(logged.find((l) => l.msg === 'fleet: relay ended')?.why).toBe('failed on the media: a listener of ours broke');
  });
});
