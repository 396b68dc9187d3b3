// Leases nobody else will ever delete. A pod run by the operator names its
// Pod as the owner of its pod Lease and claims, so the garbage collector
// deletes them with the Pod, also after a SIGKILL. rtmpd run by hand (no
// RTMPD_FLEET_POD_UID) leaves them behind when killed, until a process of the
// same pod name starts again: with random pod names, never. A Lease that
// exists keeps its pod *present* (directory.ts): every stream list asks it,
// its claims are listed and relays try it. So an alive pod deletes a pod
// Lease without an owner that it has seen unrenewed far longer than an API
// server brownout lasts, then the claims of holders whose pod Lease is gone.
// Every pod may do it: each delete is a compare-and-swap on what the API
// server returned just before, so a pod that renewed meanwhile keeps its
// Lease, and of pods racing to delete one Lease all but one hear 404 or 409.
import type { Logger } from '../telemetry/logger.ts';
import type { FleetDirectory } from './directory.ts';
import type { LeaseApi } from './lease-api.ts';
import { podLeaseName, podOf, type ClaimRecord, type PodRecord } from './records.ts';

/**
 * How long a pod Lease goes unrenewed before it is taken for abandoned: at
 * least 5 minutes, what Kubernetes itself waits before evicting the pods of a
 * node that stopped reporting (the default not-ready and unreachable
 * tolerations), so a brownout the cluster rides out never costs a pod its
 * Lease; and at least 10 of the Lease's durations, for fleets that chose long ones.
 */
export const abandonedAfterMs = (leaseDurationMs: number): number => Math.max(5 * 60_000, 10 * leaseDurationMs);

export interface AbandonedLeasesOptions {
  api: LeaseApi;
  directory: FleetDirectory;
  /** This pod's identity: it deletes nothing while it does not see its own Lease renewed. */
  identity: string;
  log: Logger;
  /** Tests only: one bound for every Lease instead of abandonedAfterMs(its duration). */
  abandonedAfterMs?: number;
}

export class AbandonedLeases {
  private readonly o: AbandonedLeasesOptions;
  /** Leases deleted as abandoned, for /metrics. */
  readonly deleted = { pod: 0, claim: 0 };
  /** Delete requests made, won or lost. */
  writes = 0;

  constructor(o: AbandonedLeasesOptions) {
    this.o = o;
  }

  /** Deletes the pod Leases found abandoned, then the claims whose holder has no pod Lease. */
  async sweep(): Promise<void> {
    const { directory, identity } = this.o;
    // A pod cut off from the API server sees every other Lease silent too.
    if (!directory.livePod(identity)) return;
    for (const pod of directory.presentPods()) {
      if (pod.identity !== identity && !pod.ownedByPod && this.abandoned(pod)) await this.deletePod(pod);
    }
    for (const [holder, claims] of this.orphanedClaims()) await this.deleteClaims(holder, claims);
  }

  private abandoned(pod: PodRecord): boolean {
    const bound = this.o.abandonedAfterMs ?? abandonedAfterMs(pod.durationMs);
    return this.o.directory.silentFor(pod.identity) >= bound;
  }

  private async deletePod(seen: PodRecord): Promise<void> {
    const { api, directory, log } = this.o;
    // The watch may have missed renewals: decide on the Lease as the API server has it now.
    await directory.refreshPod(seen.lease);
    const pod = directory.presentPod(seen.identity);
    if (!pod || !this.abandoned(pod)) return;
    const silentMs = Math.round(directory.silentFor(pod.identity));
    this.writes++;
    if (!(await api.delete(pod.lease, pod.resourceVersion))) return; // renewed or deleted meanwhile
    this.deleted.pod++;
    log.warn(
      { pod: pod.pod, identity: pod.identity, silentMs },
      'fleet: deleted the pod lease of a pod not seen renewing it for long (killed while run without the operator?)',
    );
    await directory.refreshPod(pod.lease);
  }

  /** Claims without a Pod owner whose holder this pod sees no Lease of, by holder. */
  private orphanedClaims(): Map<string, ClaimRecord[]> {
    const { directory } = this.o;
    const byHolder = new Map<string, ClaimRecord[]>();
    for (const claim of directory.claims()) {
      if (claim.ownedByPod || directory.presentPod(claim.identity)) continue;
      const held = byHolder.get(claim.identity);
      if (held) held.push(claim);
      else byHolder.set(claim.identity, [claim]);
    }
    return byHolder;
  }

  private async deleteClaims(holder: string, claims: ClaimRecord[]): Promise<void> {
    const { api, directory, log } = this.o;
    // A watch behind a pod that has just started (or recreated its Lease) must not cost it its claims.
    await directory.refreshPod(podLeaseName(podOf(holder)));
    if (directory.presentPod(holder)) return;
    for (const claim of claims) {
      this.writes++;
      if (!(await api.delete(claim.lease, claim.resourceVersion))) continue;
      this.deleted.claim++;
      log.warn({ stream: claim.streamId, holder }, 'fleet: deleted a stream claim whose holder has no pod lease');
    }
  }
}
