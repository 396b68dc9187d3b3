import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { publishRequest } from '../../test/support/admission-request.ts';
import { memoryLeaseApi } from '../../test/support/memory-lease-api.ts';
import { StreamHub } from '../hub/hub.ts';
import type { CloseReason } from '../hub/subscriber.ts';
import { AbandonedLeases, abandonedAfterMs } from './abandoned.ts';
import { StreamClaims } from './claims.ts';
import { FleetDirectory } from './directory.ts';
import type { LeaseApi } from './lease-api.ts';
import { Membership } from './membership.ts';
import { claimLease, claimName, podLease, podLeaseName } from './records.ts';

const fleet = 'edge';
const log = pino({ level: 'silent' });
const stream = 'rtmp/live/cam';
/** The bound these tests give, in place of abandonedAfterMs(10 s) = 5 minutes. */
const BOUND = 60_000;
const LEASE_SECONDS = 10;
const epoch = Date.UTC(2026, 10, 30, 12);
const at = (ms: number) => new Date(epoch + ms).toISOString();

const podFields = (pod: string, identity: string, renewedAt: number, podUid?: string) => ({
  fleet,
  pod,
  podUid,
  identity,
  httpAddress: '10.0.0.1:8082',
  durationSeconds: LEASE_SECONDS,
  publishers: 1,
  players: 0,
  draining: false,
  now: at(renewedAt),
  acquireTime: at(0),
});

/**
 * edge-1 (alive, it sweeps) and edge-0, which held live/cam and was killed at
 * 0; its Leases name a Pod owner when `podUid` is given. Time moves by hand:
 * the in-memory watch never reports, so edge-1 reads Leases back (refreshPod).
 */
async function fleetWithAKilledPod(podUid?: string) {
  let t = 0;
  const api = memoryLeaseApi();
  await api.create(podLease(podFields('edge-0', 'edge-0_dead', 0, podUid)));
  await api.create(
    claimLease({ fleet, streamId: stream, protocol: 'rtmp', identity: 'edge-0_dead', podUid, durationSeconds: 10, now: at(0) }),
  );
  await api.create(podLease(podFields('edge-1', 'edge-1_live', 0)));
  const directory = new FleetDirectory({ api, fleet, log, now: () => t });
  await directory.start();
  const sweeper = new AbandonedLeases({ api, directory, identity: 'edge-1_live', log, abandonedAfterMs: BOUND });
  const renew = async (pod: string, identity: string) => {
    const current = await api.get(podLeaseName(pod));
    await api.replace(podLease(podFields(pod, identity, t), current?.metadata.resourceVersion));
  };
  /** Moves the clock to `ms`; edge-1 renews its Lease and sees it. */
  const moveTo = async (ms: number) => {
    t = ms;
    await renew('edge-1', 'edge-1_live');
    await directory.refreshPod(podLeaseName('edge-1'));
  };
  const leases = async () => ({
    pod: (await api.get(podLeaseName('edge-0'))) !== undefined,
    claim: (await api.get(claimName(fleet, stream))) !== undefined,
  });
  return { api, directory, sweeper, renew, moveTo, leases, setClock: (ms: number) => (t = ms) };
}

describe('pod Leases nobody will delete', () => {
  afterEach(() => vi.useRealTimers());

  it('waits 5 minutes, or 10 Lease durations when longer, before taking a pod for abandoned', () => {
    expect(abandonedAfterMs(10_000)).toBe(300_000);
    expect(abandonedAfterMs(60_000)).toBe(600_000);
  });

  it('deletes the pod Lease and the claims of a pod killed without the operator once not seen renewed for the bound, not before', async () => {
    const f = await fleetWithAKilledPod();
    await f.moveTo(BOUND - 1);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: true, claim: true });
    expect(f.directory.owner(stream)?.pod.pod).toBe('edge-0');

    await f.moveTo(BOUND);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: false, claim: false });
    expect(f.directory.owner(stream)).toBeUndefined();
    expect(f.directory.presentPods().map((p) => p.pod)).toEqual(['edge-1']);
    expect(f.sweeper.deleted).toEqual({ pod: 1, claim: 1 });
  });

  it('leaves Leases that name a Pod owner to the garbage collector', async () => {
    const f = await fleetWithAKilledPod('0d7c6a43-uid');
    await f.moveTo(10 * BOUND);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: true, claim: true });
    expect(f.sweeper.deleted).toEqual({ pod: 0, claim: 0 });
  });

  it('keeps the Lease of a pod that renewed behind the watch’s back (read back before deleting)', async () => {
    const f = await fleetWithAKilledPod();
    f.setClock(BOUND / 2);
    await f.renew('edge-0', 'edge-0_dead'); // not seen: the watch has fallen behind
    await f.moveTo(BOUND);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: true, claim: true });
    // Seen renewed when it was read back, at BOUND on this pod's clock: the bound runs from there.
    await f.moveTo(2 * BOUND - 1);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: true, claim: true });
    await f.moveTo(2 * BOUND);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: false, claim: false });
  });

  it('keeps the claims of a holder whose pod Lease is back (recreated after a stall), though the watch has not seen it', async () => {
    const f = await fleetWithAKilledPod();
    await f.api.delete(podLeaseName('edge-0'));
    await f.directory.refreshPod(podLeaseName('edge-0'));
    await f.api.create(podLease(podFields('edge-0', 'edge-0_dead', 0))); // not seen: the watch has fallen behind
    await f.moveTo(1000);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: true, claim: true });
    expect(f.directory.owner(stream)?.pod.pod).toBe('edge-0');
  });

  it('loses a compare-and-swap to a renewal between its read and its delete quietly', async () => {
    const f = await fleetWithAKilledPod();
    await f.moveTo(BOUND);
    const racing = new AbandonedLeases({
      api: {
        ...f.api,
        delete: async (name, resourceVersion) => {
          if (name === podLeaseName('edge-0')) await f.renew('edge-0', 'edge-0_dead');
          return f.api.delete(name, resourceVersion);
        },
      },
      directory: f.directory,
      identity: 'edge-1_live',
      log,
      abandonedAfterMs: BOUND,
    });
    await racing.sweep();
    expect(await f.leases()).toEqual({ pod: true, claim: true });
    expect(racing.deleted).toEqual({ pod: 0, claim: 0 });
  });

  it('deletes nothing while it does not see its own Lease renewed: it may be the pod cut off', async () => {
    const f = await fleetWithAKilledPod();
    f.setClock(10 * BOUND);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: true, claim: true });
    await f.moveTo(10 * BOUND);
    await f.sweeper.sweep();
    expect(await f.leases()).toEqual({ pod: false, claim: false });
  });

  it('a pod taken for abandoned that was only cut off recreates its Lease, and its publisher, whose claim is gone, is ended (claim_lost)', async () => {
    vi.useFakeTimers();
    const start = Date.now();
    const now = () => Date.now() - start;
    const api = memoryLeaseApi({ live: true });
    let cutOff = false;
    const unlessCutOff =
      <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      (...args: A): Promise<R> =>
        cutOff ? Promise.reject(new Error('the API server does not answer')) : call(...args);
    const edge0Api: LeaseApi = {
      ...api,
      create: unlessCutOff(api.create),
      get: unlessCutOff(api.get),
      replace: unlessCutOff(api.replace),
      delete: unlessCutOff(api.delete),
    };
    const member = (pod: string, identity: string, leaseApi: LeaseApi) =>
      new Membership({
        api: leaseApi,
        fleet,
        pod,
        identity,
        httpAddress: '10.0.0.1:8082',
        durationSeconds: LEASE_SECONDS,
        load: () => ({ publishers: 1, players: 0 }),
        log,
      });
    const edge0 = member('edge-0', 'edge-0_live', edge0Api);
    const edge1 = member('edge-1', 'edge-1_live', api);
    await edge0.start();
    await edge1.start();
    const directory0 = new FleetDirectory({ api: edge0Api, fleet, log, now });
    const directory1 = new FleetDirectory({ api, fleet, log, now });
    await directory0.start();
    await directory1.start();
    const hub0 = new StreamHub({ gopCacheMaxBytes: 0, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 30_000 });
    const claims0 = new StreamClaims({
      api: edge0Api,
      directory: directory0,
      hub: hub0,
      fleet,
      identity: 'edge-0_live',
      durationSeconds: LEASE_SECONDS,
      maxWaitMs: 5000,
      endRelay: () => undefined,
      answers: () => Promise.resolve(true),
      log,
      now,
    });
    expect(await claims0.claim(publishRequest({ startedAt: now() }))).toMatchObject({ allow: true });
    const closed: CloseReason[] = [];
    hub0.publish('live', 'cam', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: (reason) => closed.push(reason) });
    const sweeper = new AbandonedLeases({ api, directory: directory1, identity: 'edge-1_live', log, abandonedAfterMs: BOUND });

    cutOff = true;
    await vi.advanceTimersByTimeAsync(BOUND);
    await sweeper.sweep();
    expect(await api.get(podLeaseName('edge-0'))).toBeUndefined();
    // Its watch hears the claim go (as it would on catching up after the cut): the publish is ended, not left unclaimed.
    expect(closed).toEqual(['claim_lost']);
    expect(claims0.heldStreams()).toEqual([]);

    cutOff = false;
    await vi.advanceTimersByTimeAsync(edge0.renewIntervalMs);
    expect((await api.get(podLeaseName('edge-0')))?.spec.holderIdentity).toBe('edge-0_live');
    expect(directory1.livePod('edge-0_live')?.pod).toBe('edge-0');
    // Its encoder, reconnecting, publishes again on it.
    hub0.unpublish(hub0.byId(stream)!, 'claim_lost');
    expect(await claims0.claim(publishRequest({ startedAt: now() }))).toMatchObject({ allow: true });
    directory0.stop();
    directory1.stop();
    claims0.close();
  });
});
