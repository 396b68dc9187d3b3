// This pod's Lease: taken at start (a previous process under the same pod
// name is replaced), renewed every third of its duration with the pod's
// address and load, deleted on a clean stop (and, when the pod knows its UID,
// by the garbage collector with its Pod; without it, by another pod once it
// has gone unrenewed for minutes, abandoned.ts). It is the fleet's only
// steady-state write: one per pod per renewal, however many streams it has.
import type { Logger } from '../telemetry/logger.ts';
import type { LeaseApi } from './lease-api.ts';
import { podLease, podLeaseName, type PodLeaseFields } from './records.ts';

export interface MembershipOptions {
  api: LeaseApi;
  fleet: string;
  pod: string;
  /** The Pod's UID, which makes the Pod the Lease's owner; unset or empty: no owner. */
  podUid?: string;
  identity: string;
  httpAddress: string;
  durationSeconds: number;
  /** What the Lease reports at each renewal. */
  load: () => { publishers: number; players: number };
  log: Logger;
}

const isoNow = (): string => new Date().toISOString();

export class Membership {
  readonly name: string;
  private readonly o: MembershipOptions;
  private resourceVersion: string | undefined;
  private readonly acquireTime = isoNow();
  private draining = false;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Lease writes made, for the README's write-rate figure and /metrics. */
  writes = 0;

  constructor(o: MembershipOptions) {
    this.o = o;
    this.name = podLeaseName(o.pod);
  }

  get renewIntervalMs(): number {
    return (this.o.durationSeconds * 1000) / 3;
  }

  /** Takes the pod's Lease and starts renewing it. */
  async start(): Promise<void> {
    await this.write();
    this.schedule();
  }

  /** Says in the Lease that this pod is draining (at once, not at the next renewal). */
  async drain(): Promise<void> {
    this.draining = true;
    await this.renewNow();
  }

  /** Stops renewing and deletes the Lease, so the fleet forgets this pod at once. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.renewing;
    try {
      await this.o.api.delete(this.name, this.resourceVersion);
      this.writes++;
    } catch (err) {
      this.o.log.warn({ err: String(err) }, 'fleet: could not delete the pod lease; it expires by itself');
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.renewNow().finally(() => this.schedule()), this.renewIntervalMs);
    this.timer.unref();
  }

  private renewNow(): Promise<void> {
    this.renewing = this.renewing.then(() =>
      this.write().catch((err: unknown) => this.o.log.warn({ err: String(err) }, 'fleet: renewing the pod lease failed')),
    );
    return this.renewing;
  }

  private fields(): PodLeaseFields {
    const { fleet, pod, podUid, identity, httpAddress, durationSeconds } = this.o;
    const load = this.o.load();
    return {
      fleet,
      pod,
      podUid,
      identity,
      httpAddress,
      durationSeconds,
      ...load,
      draining: this.draining,
      now: isoNow(),
      acquireTime: this.acquireTime,
    };
  }

  /** Replace when we know the version (compare-and-swap), else read it, else create. */
  private async write(): Promise<void> {
    const { api, log } = this.o;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.resourceVersion === undefined) {
        const current = await api.get(this.name);
        if (!current) {
          const created = await api.create(podLease(this.fields()));
          this.writes++;
          if (created) {
            this.resourceVersion = created.metadata.resourceVersion;
            return;
          }
          continue; // created by someone else meanwhile: read it
        }
        if (current.spec.holderIdentity !== this.o.identity) {
          log.info({ lease: this.name, previous: current.spec.holderIdentity }, 'fleet: taking over the pod lease of a previous process');
        }
        this.resourceVersion = current.metadata.resourceVersion;
      }
      const replaced = await api.replace(podLease(this.fields(), this.resourceVersion));
      this.writes++;
      if (replaced) {
        this.resourceVersion = replaced.metadata.resourceVersion;
        return;
      }
      // Someone else wrote it (another process claiming this pod's name) or deleted it (a pod that took this
      // one for abandoned after a long stall, abandoned.ts): read and retake, or create it again.
      log.warn({ lease: this.name }, 'fleet: the pod lease changed or was deleted under us; taking it back');
      this.resourceVersion = undefined;
    }
    throw new Error(`could not write the pod lease ${this.name}`);
  }
}
