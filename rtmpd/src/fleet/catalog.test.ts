import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import { memoryLeaseApi } from '../../test/support/memory-lease-api.ts';
import { BitrateMeter } from '../hub/bitrate.ts';
import { StreamHub } from '../hub/hub.ts';
import type { RecordingStore } from '../http/recording-store.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import { FleetCatalog } from './catalog.ts';
import { FleetDirectory } from './directory.ts';
import { claimLease, podLease, podLeaseName } from './records.ts';
import { fleetRoutes, podStreams } from './routes.ts';

const fleet = 'edge';
const token = 'the-fleet-token-of-this-test';
const silent = pino({ level: 'silent' });
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const newHub = () => new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });

async function listen(server: ReturnType<typeof createServer>): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A pod's /fleet/v1 as rtmpd serves it, for the streams of `hub`. */
function ownerPod(hub: StreamHub): Promise<string> {
  const bitrate = new BitrateMeter(hub);
  closers.push(() => bitrate.close());
  const routes = fleetRoutes({
    hub,
    // Not asked for: only the stream list is.
    snapshots: {} as SnapshotService,
    recordings: {} as RecordingStore,
    bitrate,
    sources: {},
    renditionPublished: () => Promise.resolve(),
    pod: 'edge-0',
    token,
  });
  const app = new Koa();
  app.silent = true;
  app.use(routes.routes());
  return listen(createServer(app.callback()));
}

describe('the fleet’s stream list, when this pod saw no renewal of the owner’s Lease for longer than its duration', () => {
  let clip: string;
  beforeAll(async () => {
    clip = await lavfiClip({ width: 320, height: 180, seconds: 1 });
  });

  /** edge-0 owns live/cam and serves it at `address`; this pod (edge-1) then sees no renewal for a minute. */
  async function ownerNotSeenRenewed(address: string) {
    let clock = 0;
    const api = memoryLeaseApi();
    const at = new Date().toISOString();
    const lease = { fleet, durationSeconds: 10, acquireTime: at, now: at, publishers: 1, players: 0, draining: false };
    await api.create(podLease({ ...lease, pod: 'edge-0', identity: 'edge-0_a', httpAddress: address }));
    await api.create(podLease({ ...lease, pod: 'edge-1', identity: 'edge-1_b', httpAddress: '127.0.0.1:1' }));
    await api.create(
      claimLease({ fleet, streamId: 'rtmp/live/cam', protocol: 'rtmp', identity: 'edge-0_a', durationSeconds: 10, now: at }),
    );
    const directory = new FleetDirectory({ api, fleet, log: silent, now: () => clock });
    await directory.start();
    closers.push(() => directory.stop());
    clock = 60_000;
    const here = newHub();
    const bitrate = new BitrateMeter(here);
    closers.push(() => bitrate.close());
    // A new catalog for each list: the list is kept for a second.
    const catalog = () =>
      new FleetCatalog({
        directory,
        identity: 'edge-1_b',
        token,
        log: silent,
        local: () => podStreams({ hub: here, bitrate, sources: {}, pod: 'edge-1' }),
      });
    return { api, directory, catalog };
  }

  it('lists the stream as its owner describes it, while the owner’s Lease exists', async () => {
    const owned = newHub();
    closers.push(() => owned.closeAll());
    await publishFlv(owned, 'live', 'cam', clip);
    const { directory, catalog } = await ownerNotSeenRenewed(await ownerPod(owned));
    expect(directory.livePod('edge-0_a')).toBeUndefined();

    const [view, ...others] = await catalog().list();
    expect(others).toEqual([]);
    // The owner's own answer: its tracks (a view from the claim alone knows none).
    expect(view).toMatchObject({ stream_id: 'rtmp/live/cam', owner: { pod: 'edge-0' }, video: { codec: 'h264', width: 320 } });
  });

  it('lists it from its claim when the owner does not answer, and no more once the owner’s Lease is gone', async () => {
    const { api, directory, catalog } = await ownerNotSeenRenewed(await listen(createServer((_req, res) => res.writeHead(503).end())));
    expect(await catalog().list()).toMatchObject([{ stream_id: 'rtmp/live/cam', owner: { pod: 'edge-0' }, video: null }]);

    await api.delete(podLeaseName('edge-0'));
    await directory.refreshPod(podLeaseName('edge-0'));
    expect(await catalog().list()).toEqual([]);
  });
});

describe('the fleet’s stream list of one catalog', () => {
  it('is gathered once for the requests of a second, then anew', async () => {
    const api = memoryLeaseApi();
    const at = new Date().toISOString();
    const lease = { fleet, durationSeconds: 10, acquireTime: at, now: at, publishers: 0, players: 0, draining: false };
    await api.create(podLease({ ...lease, pod: 'edge-1', identity: 'edge-1_b', httpAddress: '127.0.0.1:1' }));
    const directory = new FleetDirectory({ api, fleet, log: silent });
    await directory.start();
    closers.push(() => directory.stop());
    let gathered = 0;
    const local = () => {
      gathered++;
      return { pod: 'edge-1', streams: [] };
    };
    const catalog = new FleetCatalog({ directory, identity: 'edge-1_b', token, log: silent, local });
    await Promise.all([catalog.list(), catalog.list()]);
    await catalog.list();
    expect(gathered).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await catalog.list();
    expect(gathered).toBe(2);
  });
});
