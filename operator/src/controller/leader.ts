// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
// acquire when the lease is free or its holder stopped renewing for
// leaseDuration (measured on our own clock, from when we last saw the record
// change), renew every retryPeriod, give up leadership when renewals fail for
// renewDeadline, and release the lease on a clean stop so a standby takes over
// at once. Writes are compare-and-swap on resourceVersion.
import { ApiException, V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { sleep } from '@flux-rtmpd/rtmpd/bounded-wait';

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  /** controller-runtime defaults: 15 s, 10 s, 2 s. */
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
}

const code = (err: unknown): number | undefined => (err instanceof ApiException ? err.code : undefined);

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectionOptions, 'onNewLeader'>> & Pick<LeaderElectionOptions, 'onNewLeader'>;
  #leading = false;
  /** Aborted by stop(): cuts a sleep short, also one that starts after stop() (a Lease request was in flight). */
  readonly #stopping = new AbortController();
  #observed?: { holder: string; renewTime: string; resourceVersion: string };
  #observedAt = 0;
  #lastLeader = '';
  #loop?: Promise<void>;

  constructor(opts: LeaderElectionOptions) {
    this.#o = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops campaigning; a leader releases the lease first. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
    if (this.#leading) {
      await this.#release();
      this.#leading = false;
      this.#o.onStoppedLeading();
    }
  }

  async #run(): Promise<void> {
    const { log, retryPeriodMs, renewDeadlineMs } = this.#o;
    // Acquire.
    while (!this.#stopping.signal.aborted && !this.#leading) {
      if (await this.#tryAcquireOrRenew()) {
        this.#leading = true;
        log.info({ lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity }, 'became leader');
        this.#o.onStartedLeading();
        break;
      }
      await sleep(retryPeriodMs * (1 + Math.random() * 0.2), this.#stopping.signal);
    }
    // Renew.
    let lastRenew = Date.now();
    while (!this.#stopping.signal.aborted && this.#leading) {
      await sleep(retryPeriodMs, this.#stopping.signal);
      if (this.#stopping.signal.aborted) break;
      if (await this.#tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > renewDeadlineMs) {
        log.error('failed to renew the lease within the renew deadline: leadership lost');
        this.#leading = false;
        this.#o.onStoppedLeading();
      }
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity, leaseDurationSeconds, log } = this.#o;
    const now = new V1MicroTime();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (code(err) !== 404) {
        log.warn({ err }, 'reading the leader lease failed');
        return false;
      }
      try {
        await api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        this.#observe(identity, now.toISOString(), '');
        return true;
      } catch (createErr) {
        if (code(createErr) !== 409) log.warn({ err: String(createErr) }, 'creating the leader lease failed');
        return false;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime ? new Date(spec.renewTime).toISOString() : '';
    const rv = lease.metadata?.resourceVersion ?? '';
    if (
      !this.#observed ||
      this.#observed.holder !== holder ||
      this.#observed.renewTime !== renewTime ||
      this.#observed.resourceVersion !== rv
    ) {
      this.#observe(holder, renewTime, rv);
    }
    const duration = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    const held = holder !== '' && holder !== identity && this.#observedAt + duration > Date.now();
    if (held) return false;
    const transitions = (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    try {
      const updated = await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { ...lease.metadata, name, namespace, resourceVersion: rv },
          spec: {
            ...spec,
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: holder === identity && spec.acquireTime ? new V1MicroTime(spec.acquireTime) : now,
            renewTime: now,
            leaseTransitions: transitions,
          },
        },
      });
      this.#observe(identity, now.toISOString(), updated.metadata?.resourceVersion ?? '');
      return true;
    } catch (err) {
      if (code(err) !== 409) log.warn({ err }, 'updating the leader lease failed');
      return false;
    }
  }

  #observe(holder: string, renewTime: string, resourceVersion: string): void {
    this.#observed = { holder, renewTime, resourceVersion };
    this.#observedAt = Date.now();
    if (holder && holder !== this.#lastLeader) {
      this.#lastLeader = holder;
      this.#o.onNewLeader?.(holder);
    }
  }

  /** Gives the lease up (empty holder, 1 s duration) so a standby need not wait it out. */
  async #release(): Promise<void> {
    const { api, namespace, name, identity, log } = this.#o;
    try {
      const lease = await api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      const now = new V1MicroTime();
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now } },
      });
      log.info('released the leader lease');
    } catch (err) {
      log.warn({ err }, 'releasing the leader lease failed');
    }
  }
}
