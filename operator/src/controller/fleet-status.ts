// The fleet's live counts for the status, from the Leases its pods keep
// (rtmpd/src/fleet/records.ts): each pod writes its publishers and players into
// its own Lease at every renewal, and holds a claim Lease per live stream. The
// operator watches those Leases, so the counts cost no request to the pods.
import { claimRecord, podRecord } from '@flux-rtmpd/rtmpd/fleet-records';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { RtmpServerStatus } from '../api/rtmpserver.ts';

export type FleetCounts = Required<Pick<RtmpServerStatus, 'streams' | 'publishers' | 'players' | 'pods'>>;

type LeaseObject = KubernetesObject & {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string };
};

const asLease = (o: LeaseObject) => ({
  metadata: {
    name: o.metadata?.name ?? '',
    resourceVersion: o.metadata?.resourceVersion,
    labels: o.metadata?.labels,
    annotations: o.metadata?.annotations,
  },
  spec: o.spec ?? {},
});

/**
 * Counts of the pods that run: a pod Lease counts while its pod exists (a
 * restarted rtmpd takes its Lease over at once; a deleted pod's Lease, which
 * a killed process leaves behind, does not count), and a stream while its
 * claim is held by the process that holds a counted pod Lease (a dead
 * process's claims are stale until another pod takes them over).
 */
export function fleetCounts(leases: readonly LeaseObject[], runningPods: ReadonlySet<string>): FleetCounts {
  const pods = leases
    .flatMap((l) => {
      const p = podRecord(asLease(l));
      return p && runningPods.has(p.pod) ? [p] : [];
    })
    .sort((a, b) => a.pod.localeCompare(b.pod));
  const holders = new Set(pods.map((p) => p.identity));
  const streams = leases.filter((l) => {
    const c = claimRecord(asLease(l));
    return c !== undefined && holders.has(c.identity);
  }).length;
  return {
    streams,
    publishers: pods.reduce((n, p) => n + p.publishers, 0),
    players: pods.reduce((n, p) => n + p.players, 0),
    pods: pods.map((p) => ({ name: p.pod, publishers: p.publishers, players: p.players, ...(p.draining ? { draining: true } : {}) })),
  };
}

/** Whether a Lease change can change the counts: a renewal that reports the same load does not. */
export function countsChanged(before: LeaseObject | undefined, after: LeaseObject | undefined): boolean {
  if (!before || !after) return true;
  const report = (o: LeaseObject) => {
    const p = podRecord(asLease(o));
    if (p) return `${p.identity} ${p.publishers} ${p.players} ${p.draining}`;
    const c = claimRecord(asLease(o));
    return c ? c.identity : '';
  };
  return report(before) !== report(after);
}
