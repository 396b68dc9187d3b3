// What this pod knows of its fleet: every pod Lease and stream claim, kept by
// one list+watch of the fleet's Leases (resumed from the last version seen,
// re-listed on 410 Gone, retried with backoff), and when each pod Lease was
// last seen renewed.
//
// Two rules, one per kind of decision:
// - a pod is *present* while its Lease exists (and names a holder). What is
//   served from a pod (the streams it owns and their players, its
//   recordings, relays and snapshots of its streams) is asked of every
//   present pod, and its own answer decides: an API server that falls
//   behind (renewals that time out under load) stops no pod from serving,
//   so it must not make a pod's streams or recordings vanish on the others.
//   A pod that is really gone refuses, does not answer in time, or has lost
//   its Lease to its restarted process, the garbage collector or, run
//   without the operator, another pod once unrenewed for minutes
//   (abandoned.ts).
// - a pod is *alive* while it is present and its Lease has been seen to
//   change within the Lease's duration, measured on this pod's clock from
//   when the change was observed, as client-go's leader election does
//   (clocks of different pods are never compared). Only taking over what a
//   pod holds (its claims, claims.ts) waits for it to be no longer alive.
import { EventEmitter } from 'node:events';
import type { Logger } from '../telemetry/logger.ts';
import { statusOf, type Lease, type LeaseApi, type LeaseEvent } from './lease-api.ts';
import { claimRecord, fleetSelector, podLeaseName, podOf, podRecord, type ClaimRecord, type PodRecord } from './records.ts';

interface Observed {
  record: PodRecord;
  /** performance.now() when holder or renewTime last changed. */
  changedAt: number;
}

export interface DirectoryEvents {
  /** A claim appeared, changed hands or went away (`claim` undefined). */
  claim: [streamId: string, claim: ClaimRecord | undefined];
  /** A pod Lease changed or went away. */
  pod: [pod: PodRecord, gone: boolean];
}

const MAX_BACKOFF_MS = 10_000;

export class FleetDirectory extends EventEmitter<DirectoryEvents> {
  private readonly api: LeaseApi;
  private readonly selector: string;
  private readonly log: Logger;
  private readonly now: () => number;
  /** By Lease name. */
  private readonly pods = new Map<string, Observed>();
  /** By stream id. */
  private readonly claimsById = new Map<string, ClaimRecord>();
  private resourceVersion = '';
  private stopWatch: (() => void) | undefined;
  private stopped = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private readonly syncedOnce: Promise<void>;
  private markSynced!: () => void;

  constructor(o: { api: LeaseApi; fleet: string; log: Logger; now?: () => number }) {
    super();
    this.api = o.api;
    this.selector = fleetSelector(o.fleet);
    this.log = o.log;
    this.now = o.now ?? (() => performance.now());
    this.syncedOnce = new Promise((resolve) => (this.markSynced = resolve));
  }

  /** Lists and starts watching; resolves once the first list is in. */
  async start(): Promise<void> {
    await this.relist();
    this.markSynced();
    void this.watch();
  }

  /** Resolves once the first list is in. */
  synced(): Promise<void> {
    return this.syncedOnce;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.stopWatch?.();
  }

  /** The claim on a stream, valid or not. */
  claim(streamId: string): ClaimRecord | undefined {
    return this.claimsById.get(streamId);
  }

  claims(): ClaimRecord[] {
    return [...this.claimsById.values()];
  }

  /** The pod holding `identity`, while its Lease exists: what is served from it is asked of it. */
  presentPod(identity: string): PodRecord | undefined {
    return this.observed(identity)?.record;
  }

  /** Every pod whose Lease exists, seen renewed lately or not. */
  presentPods(): PodRecord[] {
    return this.podsWhere((o) => this.isPresent(o));
  }

  /** The pod holding `identity`, while it is alive: its claims are not to be taken over. */
  livePod(identity: string): PodRecord | undefined {
    const o = this.observed(identity);
    return o && this.isAlive(o) ? o.record : undefined;
  }

  /** Every pod whose Lease is alive. */
  livePods(): PodRecord[] {
    return this.podsWhere((o) => this.isAlive(o));
  }

  /** How long ago the Lease of `identity` was last seen renewed (Infinity when unknown). */
  silentFor(identity: string): number {
    const o = this.observed(identity);
    return o ? this.now() - o.changedAt : Infinity;
  }

  /**
   * The pod that owns a stream, where its players here are sent (relays,
   * snapshots, renditions) and whose answer describes it in the fleet's
   * list: its claim's holder while the holder is present, alive or not.
   */
  owner(streamId: string): { claim: ClaimRecord; pod: PodRecord } | undefined {
    const claim = this.claimsById.get(streamId);
    const pod = claim && this.presentPod(claim.identity);
    return claim && pod ? { claim, pod } : undefined;
  }

  /**
   * Reads the Lease of `identity`'s pod from the API server, so a decision to
   * take over its claims never rests on a watch that may have fallen behind.
   */
  async refreshPod(podLease: string): Promise<void> {
    const lease = await this.api.get(podLease);
    if (lease) this.apply('MODIFIED', lease);
    else if (this.pods.has(podLease)) this.apply('DELETED', { metadata: { name: podLease }, spec: {} });
  }

  /** The present pod holding `identity`: found by its Lease's name, which the identity gives (owner() runs per player). */
  private observed(identity: string): Observed | undefined {
    const o = this.pods.get(podLeaseName(podOf(identity)));
    return o && this.isPresent(o) && o.record.identity === identity ? o : undefined;
  }

  private podsWhere(test: (o: Observed) => boolean): PodRecord[] {
    return [...this.pods.values()].filter(test).map((o) => o.record);
  }

  /** A Lease without a holder is no pod's. */
  private isPresent(o: Observed): boolean {
    return o.record.identity !== '';
  }

  private isAlive(o: Observed): boolean {
    return this.isPresent(o) && this.now() - o.changedAt < o.record.durationMs;
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.api.list(this.selector);
    const seen = new Set(items.map((l) => l.metadata.name));
    for (const [name, o] of this.pods) if (!seen.has(name)) this.apply('DELETED', this.leaseOf(o.record));
    for (const claim of this.claims()) if (!seen.has(claim.lease)) this.removeClaim(claim.streamId);
    for (const lease of items) this.apply('MODIFIED', lease);
    this.resourceVersion = resourceVersion;
  }

  private leaseOf(record: PodRecord): Lease {
    return { metadata: { name: record.lease, labels: { 'media.fluxiot.io/lease': 'pod' } }, spec: {} };
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    try {
      this.stopWatch = await this.api.watch(
        this.selector,
        this.resourceVersion,
        (type, lease) => {
          this.failures = 0;
          if (lease.metadata.resourceVersion) this.resourceVersion = lease.metadata.resourceVersion;
          if (type !== 'BOOKMARK') this.apply(type, lease);
        },
        (err) => this.watchEnded(err),
      );
    } catch (err) {
      this.watchEnded(err);
    }
  }

  private watchEnded(err: unknown): void {
    if (this.stopped) return;
    const gone = statusOf(err) === 410;
    if (err && !gone) this.failures++;
    const delay = this.failures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.failures);
    if (err && !gone) this.log.warn({ err: String(err), retryInMs: delay }, 'fleet: lease watch failed');
    this.retry = setTimeout(() => {
      const next = gone ? this.relist().then(() => this.watch()) : this.watch();
      next.catch((e: unknown) => this.watchEnded(e));
    }, delay);
  }

  private apply(type: LeaseEvent, lease: Lease): void {
    const name = lease.metadata.name;
    if (type === 'DELETED') {
      const pod = this.pods.get(name);
      if (pod) {
        this.pods.delete(name);
        this.emit('pod', pod.record, true);
        return;
      }
      for (const claim of this.claimsById.values()) if (claim.lease === name) return this.removeClaim(claim.streamId);
      return;
    }
    const pod = podRecord(lease);
    if (pod) {
      const before = this.pods.get(name);
      const renewed = !before || before.record.identity !== pod.identity || before.record.renewTime !== pod.renewTime;
      this.pods.set(name, { record: pod, changedAt: renewed ? this.now() : before.changedAt });
      this.emit('pod', pod, false);
      return;
    }
    const claim = claimRecord(lease);
    if (!claim) return;
    const before = this.claimsById.get(claim.streamId);
    this.claimsById.set(claim.streamId, claim);
    if (!before || before.identity !== claim.identity || before.resourceVersion !== claim.resourceVersion) {
      this.emit('claim', claim.streamId, claim);
    }
  }

  private removeClaim(streamId: string): void {
    if (!this.claimsById.delete(streamId)) return;
    this.emit('claim', streamId, undefined);
  }
}
