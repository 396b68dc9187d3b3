// The claim logic's races, against the real kube-apiserver: several "pods"
// in this process (each its own hub, Lease directory, pod Lease and claims,
// exactly as rtmpd wires them) publish the same keys at the same moment, and
// race a dead pod's expiry. The only thing simulated is a network fault: a
// pod whose API access is cut (its calls fail), as when a node is lost.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answers } from '../../rtmpd/src/fleet/peer-http.ts';
import { StreamClaims } from '../../rtmpd/src/fleet/claims.ts';
import { FleetDirectory } from '../../rtmpd/src/fleet/directory.ts';
import { kubernetesLeaseApi, type LeaseApi } from '../../rtmpd/src/fleet/lease-api.ts';
import { Membership } from '../../rtmpd/src/fleet/membership.ts';
import { StreamHub } from '../../rtmpd/src/hub/hub.ts';
import type { AdmissionDecision } from '../../rtmpd/src/rtmp/server/admission.ts';
import { createLogger } from '../../rtmpd/src/telemetry/logger.ts';
import { publishRequest } from '../../rtmpd/test/support/admission-request.ts';
import { cluster, eventually, kubectl } from '../cluster/kube.ts';

const namespace = `claims-${randomBytes(3).toString('hex')}`;
const fleet = 'race';
const LEASE_SECONDS = 3;

/** A Lease API whose calls fail while `cut` is set, as for a pod that lost its network. */
function partitionable(api: LeaseApi): LeaseApi & { cut: boolean } {
  const watches = new Set<{ stop: () => void; done: (err: unknown) => void }>();
  const state = { cut: false };
  const guard =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (state.cut) throw new Error('network unreachable (partitioned in the test)');
      return call(...args);
    };
  return {
    get cut() {
      return state.cut;
    },
    set cut(value: boolean) {
      state.cut = value;
      if (!value) return;
      for (const w of watches) {
        w.stop();
        w.done(new Error('partitioned'));
      }
    },
    create: guard(api.create),
    get: guard(api.get),
    replace: guard(api.replace),
    delete: guard(api.delete),
    list: guard(api.list),
    watch: guard(async (selector, rv, onEvent, done) => {
      const entry = { stop: () => undefined as void, done };
      entry.stop = await api.watch(selector, rv, onEvent, (err) => (watches.delete(entry), done(err)));
      watches.add(entry);
      return () => (watches.delete(entry), entry.stop());
    }),
  };
}

interface TestPod {
  name: string;
  api: LeaseApi & { cut: boolean };
  hub: StreamHub;
  directory: FleetDirectory;
  membership: Membership;
  claims: StreamClaims;
}

const pods: TestPod[] = [];
const servers: Server[] = [];

async function startPod(name: string, maxWaitMs = 15_000): Promise<TestPod> {
  const api = partitionable(await kubernetesLeaseApi(namespace));
  const log = await createLogger({ logLevel: 'error', logFormat: 'json' });
  const identity = `${name}_${randomBytes(4).toString('hex')}`;
  const hub = new StreamHub({ gopCacheMaxBytes: 0, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 30_000 });
  const directory = new FleetDirectory({ api, fleet, log });
  // What the other pods ask when they doubt a holder is up: answers while the pod is not cut off.
  const health = createServer((req, res) => (api.cut ? req.socket.destroy() : res.end('OK')));
  await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
  servers.push(health);
  const httpAddress = `127.0.0.1:${(health.address() as AddressInfo).port}`;
  const membership = new Membership({
    api,
    fleet,
    pod: name,
    identity,
    httpAddress,
    durationSeconds: LEASE_SECONDS,
    load: () => ({ publishers: hub.size, players: 0 }),
    log,
  });
  await membership.start();
  await directory.start();
  const claims = new StreamClaims({
    api,
    directory,
    hub,
    fleet,
    identity,
    durationSeconds: LEASE_SECONDS,
    maxWaitMs,
    endRelay: () => undefined,
    answers,
    log,
  });
  const pod = { name, api, hub, directory, membership, claims };
  pods.push(pod);
  return pod;
}

const publish = (pod: TestPod, key: string): Promise<AdmissionDecision> => pod.claims.claim(publishRequest({ key }));

beforeAll(async () => {
  process.env.KUBECONFIG = cluster().kubeconfig;
  await kubectl(['create', 'namespace', namespace]);
});

afterAll(async () => {
  for (const pod of pods) {
    pod.api.cut = false;
    pod.claims.close();
    pod.directory.stop();
    await pod.membership.release().catch(() => undefined);
    pod.hub.closeAll();
  }
  for (const server of servers) server.close();
  await kubectl(['delete', 'namespace', namespace, '--wait=false'], { allowFailure: true });
});

describe('stream claims racing in the real API server', () => {
  it('two pods publishing the same key at the same moment: exactly one is admitted, the other hears BadName', async () => {
    const [a, b] = [await startPod('pod-a'), await startPod('pod-b')];
    for (let i = 0; i < 10; i++) {
      const key = `same-${i}`;
      const decisions = await Promise.all([publish(a, key), publish(b, key)]);
      expect(
        decisions.filter((d) => d.allow),
        key,
      ).toHaveLength(1);
      expect(
        decisions.find((d) => !d.allow),
        key,
      ).toMatchObject({ code: 'NetStream.Publish.BadName' });
      const winner = decisions[0]?.allow ? a : b;
      expect(winner.claims.heldStreams()).toContain(`rtmp/live/${key}`);
    }
  });

  it('a publish admitted but never begun (its client left, the hub refused it) gives its claim back at once', async () => {
    const [a, b] = [await startPod('pod-a3'), await startPod('pod-b3')];
    const decision = await publish(a, 'abandoned');
    if (!decision.allow || !decision.lease) throw new Error(`expected an admission with a lease, got ${JSON.stringify(decision)}`);
    expect(await publish(b, 'abandoned')).toMatchObject({ allow: false, code: 'NetStream.Publish.BadName' });
    // What the session does when the publish never begins. No sweep runs in this test, so only the lease frees the key.
    decision.lease.release();
    expect(a.claims.heldStreams()).toContain('rtmp/live/abandoned'); // let go in order, after this pod's other claim writes
    const taken = await eventually('the key to be admitted on the other pod', async () => {
      const next = await publish(b, 'abandoned');
      return next.allow ? next : undefined;
    });
    expect(taken.allow).toBe(true);
    expect(a.claims.heldStreams()).not.toContain('rtmp/live/abandoned');
  });

  it('a pod cut off from the API: two pods race for its claim as it expires, one takes it, and the cut-off pod ends its publisher once it sees that', async () => {
    const owner = await startPod('pod-owner');
    expect(await publish(owner, 'contested')).toMatchObject({ allow: true });
    let ended: string | undefined;
    owner.hub.publish('live', 'contested', { protocol: 'rtmp', remoteAddress: '127.0.0.1:2', close: (reason) => (ended = reason) });
    const [b, c] = [await startPod('pod-b2', 12_000), await startPod('pod-c2', 12_000)];
    // While it renews, the stream is its own.
    expect(await publish(b, 'contested')).toMatchObject({ allow: false, code: 'NetStream.Publish.BadName' });

    owner.api.cut = true;
    const cutAt = Date.now();
    // Both publish at once: both wait for the expiry, then race the compare-and-swap.
    const decisions = await Promise.all([publish(b, 'contested'), publish(c, 'contested')]);
    const admittedAfter = Date.now() - cutAt;
    expect(decisions.filter((d) => d.allow)).toHaveLength(1);
    expect(decisions.find((d) => !d.allow)).toMatchObject({ code: 'NetStream.Publish.BadName' });
    // Not before the Lease could have expired (the last renewal may have been up to a third of it earlier).
    expect(admittedAfter).toBeGreaterThanOrEqual(((LEASE_SECONDS * 2) / 3) * 1000 - 500);
    expect(admittedAfter).toBeLessThan(LEASE_SECONDS * 1000 + 5000);
    expect(ended).toBeUndefined(); // the cut-off pod cannot know yet

    owner.api.cut = false;
    await eventually('the cut-off pod to end its publisher', async () => ended);
    expect(ended).toBe('claim_lost');
    expect(owner.claims.heldStreams()).not.toContain('rtmp/live/contested');
  });
});
