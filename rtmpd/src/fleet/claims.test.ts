import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { publishRequest } from '../../test/support/admission-request.ts';
import { memoryLeaseApi } from '../../test/support/memory-lease-api.ts';
import { StreamHub } from '../hub/hub.ts';
import { judge, POLL_MS, StreamClaims, type HolderState } from './claims.ts';
import { FleetDirectory } from './directory.ts';
import { claimLease, podLease } from './records.ts';

const healthy: HolderState = { alive: true, answers: true, silentMs: 1000, durationMs: 10_000, draining: false };

describe('judging a claim another pod holds', () => {
  it('refuses while its holder renews and answers', () => {
    expect(judge(healthy, 'edge-1')).toEqual({ kind: 'held', pod: 'edge-1' });
  });

  it('takes it over only once the holder’s Lease has expired', () => {
    expect(judge({ ...healthy, alive: false, answers: false }, 'edge-1')).toEqual({ kind: 'stale' });
  });

  it('waits for expiry when the holder stops answering (a killed process) instead of refusing', () => {
    expect(judge({ ...healthy, answers: false, silentMs: 4000 }, 'edge-1')).toEqual({ kind: 'wait', pod: 'edge-1', ms: 6000 });
  });

  it('waits for expiry when the holder missed two renewals, even if its port answers', () => {
    expect(judge({ ...healthy, silentMs: 7000 }, 'edge-1')).toEqual({ kind: 'wait', pod: 'edge-1', ms: 3000 });
  });

  it('waits for a draining holder to let go, with no known end', () => {
    expect(judge({ ...healthy, draining: true }, 'edge-1')).toEqual({ kind: 'wait', pod: 'edge-1', ms: 0 });
  });
});

describe('taking the claim of a pod that was killed', () => {
  const fleet = 'edge';
  const killed = 'edge-0_dead';
  /** A publish of live/cam whose admission began at `startedAt` (the injected clock's). */
  const publish = (claims: StreamClaims, startedAt: number) => claims.claim(publishRequest({ startedAt }));

  /** A fleet whose pod edge-0 was killed just after renewing its Lease of `leaseSeconds`, holding live/cam; edge-1 publishes it. */
  async function afterAKill(leaseSeconds: number, maxWaitMs: number) {
    vi.useFakeTimers();
    const start = Date.now();
    const now = () => Date.now() - start;
    const api = memoryLeaseApi();
    const log = pino({ level: 'silent' });
    const at = new Date(start).toISOString();
    await api.create(
      podLease({
        fleet,
        pod: 'edge-0',
        identity: killed,
        httpAddress: '10.0.0.1:8082',
        durationSeconds: leaseSeconds,
        publishers: 1,
        players: 0,
        draining: false,
        now: at,
        acquireTime: at,
      }),
    );
    await api.create(
      claimLease({ fleet, streamId: 'rtmp/live/cam', protocol: 'rtmp', identity: killed, durationSeconds: leaseSeconds, now: at }),
    );
    const directory = new FleetDirectory({ api, fleet, log, now });
    const hub = new StreamHub({ gopCacheMaxBytes: 0, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 30_000 });
    const claims = new StreamClaims({
      api,
      directory,
      hub,
      fleet,
      identity: 'edge-1_live',
      durationSeconds: leaseSeconds,
      maxWaitMs,
      endRelay: () => undefined,
      answers: () => Promise.resolve(false), // the killed pod's port is gone
      log,
      now,
    });
    api.calls = 0;
    return { api, claims, now };
  }

  afterEach(() => vi.useRealTimers());

  it('waits out a Lease that expires late in the wait (27 s of 28 s) and takes the claim, polling, not spinning', async () => {
    const { api, claims, now } = await afterAKill(27, 28_000);
    let admittedAt: number | undefined;
    const decision = publish(claims, now()).then((d) => ((admittedAt = now()), d));
    await vi.advanceTimersByTimeAsync(28_000);
    expect(await decision).toMatchObject({ allow: true });
    expect(admittedAt).toBeGreaterThanOrEqual(27_000);
    expect(admittedAt).toBeLessThan(27_000 + 2 * POLL_MS);
    expect(claims.heldStreams()).toEqual(['rtmp/live/cam']);
    // About one create, get and Lease refresh per poll.
    expect(api.calls).toBeLessThan((4 * 28_000) / POLL_MS);
  });

  it('refuses at once when the Lease would outlast the wait', async () => {
    const { claims, now } = await afterAKill(29, 28_000);
    const decision = publish(claims, now());
    await vi.advanceTimersByTimeAsync(0);
    expect(await decision).toMatchObject({ allow: false, code: 'NetStream.Publish.BadName' });
    expect(now()).toBe(0);
  });

  it('counts the wait from the start of the admission: after 5 s of authorization, 23 s of 28 are left', async () => {
    const late = await afterAKill(25, 28_000);
    const refused = publish(late.claims, late.now() - 5000);
    await vi.advanceTimersByTimeAsync(0);
    expect(await refused).toMatchObject({ allow: false, code: 'NetStream.Publish.BadName' });
    vi.useRealTimers();

    const inTime = await afterAKill(22, 28_000);
    let admittedAt: number | undefined;
    const admitted = publish(inTime.claims, inTime.now() - 5000).then((d) => ((admittedAt = inTime.now()), d));
    await vi.advanceTimersByTimeAsync(23_000);
    expect(await admitted).toMatchObject({ allow: true });
    expect(admittedAt).toBeGreaterThanOrEqual(22_000);
  });
});
