// One owner per stream, kept in the API server. A publish is admitted only
// once this pod holds the stream's claim: created atomically (the API server
// refuses a second create), or taken over with a compare-and-swap write when
// its holder is gone. The claim is deleted when the publish ends. Nothing is
// written while a stream is live: a claim is valid while its holder's pod
// Lease is renewed (membership.ts), so liveness costs one write per pod.
import { sleep } from '../bounded-wait.ts';
import type { StreamHub } from '../hub/hub.ts';
import { streamId as idOf } from '../hub/names.ts';
import type { Stream } from '../hub/stream.ts';
import type { PublishProtocol } from '../hub/subscriber.ts';
import type { AdmissionDecision, AdmissionRequest } from '../rtmp/server/admission.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { FleetDirectory } from './directory.ts';
import type { LeaseApi } from './lease-api.ts';
import { claimLease, claimName, claimRecord, podLeaseName, podOf, type ClaimRecord } from './records.ts';

/** What a claim held by someone else means for a publish here. */
export type Verdict =
  /** Held by a live pod: refused. */
  | { kind: 'held'; pod: string }
  /** Its holder has missed renewals or is draining: wait (at most `ms`) for it to renew, expire or let go. */
  | { kind: 'wait'; pod: string; ms: number }
  /** Its holder is gone (Lease expired, deleted, or taken by a newer process): take it over. */
  | { kind: 'stale' };

export interface HolderState {
  /** The holder's pod Lease is alive. */
  alive: boolean;
  /** Since its Lease was last seen renewed. */
  silentMs: number;
  durationMs: number;
  /** It is shutting down and about to let go of its claims. */
  draining: boolean;
  /** Its HTTP port answered just now (false: the process is likely dead, its Lease not yet expired). */
  answers: boolean;
}

/**
 * The decision on a claim someone else holds. A holder that does not answer,
 * has missed two renewals or is draining is waited for rather than refused,
 * so an encoder that reconnects because its pod died or is stopping is
 * admitted the moment the claim expires or is let go, instead of being told
 * BadName in between. Only an expired Lease lets a claim be taken: a holder
 * that merely does not answer may be cut off from us, not dead.
 */
export function judge(holder: HolderState, pod: string): Verdict {
  if (!holder.alive) return { kind: 'stale' };
  const untilExpiry = Math.max(0, holder.durationMs - holder.silentMs);
  if (holder.draining) return { kind: 'wait', pod, ms: 0 };
  if (!holder.answers || holder.silentMs > (holder.durationMs * 2) / 3) return { kind: 'wait', pod, ms: untilExpiry };
  return { kind: 'held', pod };
}

export interface ClaimsOptions {
  api: LeaseApi;
  directory: FleetDirectory;
  hub: StreamHub;
  fleet: string;
  identity: string;
  /** This Pod's UID, which makes the Pod the owner of its claims; unset or empty: no owner. */
  podUid?: string;
  durationSeconds: number;
  /** Longest a publish waits for a silent holder's claim to expire, from the start of its admission (below the idle timeout). */
  maxWaitMs: number;
  /** Ends a relay of the stream here, so the hub can take the local publisher. */
  endRelay: (streamId: string) => void;
  /** Whether a pod's HTTP port (`host:port`) answers now. */
  answers: (httpAddress: string) => Promise<boolean>;
  log: Logger;
  now?: () => number;
}

interface Held {
  resourceVersion: string;
  /** performance.now() when taken. */
  since: number;
}

/** What a publish here (an RTMP one, or a transcode's rendition) asks of the fleet: the stream's claim. */
export type ClaimRequest = Pick<AdmissionRequest, 'app' | 'key' | 'signal' | 'startedAt'> & { protocol: PublishProtocol };
export type PublishClaim = (request: ClaimRequest) => AdmissionDecision | Promise<AdmissionDecision>;

/** A claim taken for a publish that never reached the hub is let go after this. */
const PENDING_GRACE_MS = 10_000;
/** How often a publish looks again at a claim it waits for. */
export const POLL_MS = 250;

const badName = (streamId: string, why: string): AdmissionDecision => ({
  allow: false,
  code: 'NetStream.Publish.BadName',
  description: `stream ${streamId} ${why}`,
});

export class StreamClaims {
  private readonly o: ClaimsOptions;
  private readonly held = new Map<string, Held>();
  /** Per stream, the claim operation in flight: a release and the next acquire never interleave. */
  private readonly ops = new Map<string, Promise<unknown>>();
  private readonly now: () => number;
  /** Claim writes made (create, take-over, delete). */
  writes = 0;

  constructor(o: ClaimsOptions) {
    this.o = o;
    this.now = o.now ?? (() => performance.now());
    o.hub.on('unpublish', this.onUnpublish);
    o.directory.on('claim', this.onClaim);
  }

  /** Takes the stream's claim for a publish here (an RTMP one, or a transcode's rendition): it is admitted only with the claim held. */
  readonly claim = (request: ClaimRequest): Promise<AdmissionDecision> => {
    const streamId = idOf(request.app, request.key);
    return this.serialized(streamId, () => this.acquire(streamId, request));
  };

  /** Streams this pod holds claims for. */
  heldStreams(): string[] {
    return [...this.held.keys()];
  }

  /**
   * Lets go of every claim, also of streams still published here (draining):
   * their publishers, asked to reconnect, can then publish on another pod at
   * once, while the connection here lives on until they hang up.
   */
  async releaseAll(): Promise<void> {
    await Promise.all(this.heldStreams().map((id) => this.serialized(id, () => this.release(id, true))));
  }

  /** Lets go of claims whose publish never began, and of claims of a previous process of this pod. */
  async sweep(): Promise<void> {
    const now = this.now();
    for (const [streamId, held] of this.held) {
      if (!this.localPublisher(streamId) && now - held.since > PENDING_GRACE_MS) {
        await this.serialized(streamId, () => this.release(streamId));
      }
    }
    const me = podOf(this.o.identity);
    for (const claim of this.o.directory.claims()) {
      if (claim.identity !== this.o.identity && podOf(claim.identity) === me) {
        this.o.log.info({ stream: claim.streamId }, 'fleet: deleting a claim left by a previous process of this pod');
        await this.o.api.delete(claim.lease, claim.resourceVersion);
        this.writes++;
      }
    }
  }

  close(): void {
    this.o.hub.off('unpublish', this.onUnpublish);
    this.o.directory.off('claim', this.onClaim);
  }

  private serialized<T>(streamId: string, op: () => Promise<T>): Promise<T> {
    const before = this.ops.get(streamId) ?? Promise.resolve();
    const next = before.then(op, op);
    const tail = next.catch(() => undefined);
    this.ops.set(streamId, tail);
    void tail.then(() => {
      if (this.ops.get(streamId) === tail) this.ops.delete(streamId);
    });
    return next;
  }

  private localPublisher(streamId: string): Stream | undefined {
    const stream = this.o.hub.byId(streamId);
    return stream && stream.publisher.protocol !== 'relay' ? stream : undefined;
  }

  /**
   * Tries to take the stream's claim until it is decided or `maxWaitMs` has
   * passed since the admission began. Every retry waits POLL_MS first, whether for a holder to expire or
   * after a write that raced ours, so a claim that keeps changing cannot make
   * this spin.
   */
  private async acquire(streamId: string, { protocol, signal, startedAt }: ClaimRequest): Promise<AdmissionDecision> {
    // From the start of the admission: the checks before this one (authorization) spent part of the idle timeout.
    const deadline = startedAt + this.o.maxWaitMs;
    while (!signal.aborted) {
      const decision = await this.attempt(streamId, protocol, deadline);
      if (decision !== 'retry') return decision;
      const left = deadline - this.now();
      if (left <= 0) break;
      await sleep(Math.min(POLL_MS, left), signal);
    }
    return { allow: false, code: 'NetStream.Publish.Failed', description: `the claim on ${streamId} could not be settled` };
  }

  /** One try at the claim: a decision, or `retry` when its holder is to be waited for or another write came first. */
  private async attempt(streamId: string, protocol: PublishProtocol, deadline: number): Promise<AdmissionDecision | 'retry'> {
    const { api, fleet, identity, podUid, durationSeconds } = this.o;
    const name = claimName(fleet, streamId);
    const lease = (resourceVersion?: string) =>
      claimLease({ fleet, streamId, protocol, identity, podUid, durationSeconds, now: new Date().toISOString() }, resourceVersion);
    const created = await api.create(lease());
    this.writes++;
    if (created) return this.taken(streamId, created.metadata.resourceVersion ?? '');
    const current = await api.get(name);
    const claim = current && claimRecord(current);
    if (!claim) return 'retry'; // deleted in between: create again
    if (claim.streamId !== streamId) return badName(streamId, `cannot be claimed: its claim name ${name} is taken by ${claim.streamId}`);
    if (claim.identity === identity) {
      if (this.localPublisher(streamId)) return badName(streamId, 'is already being published');
      return this.taken(streamId, claim.resourceVersion);
    }
    const verdict = await this.judgeHolder(claim);
    if (verdict.kind === 'held') return badName(streamId, `is already being published (on pod ${verdict.pod})`);
    if (verdict.kind === 'wait') {
      const left = deadline - this.now();
      return verdict.ms > left || left <= 0 ? badName(streamId, `is already being published (on pod ${verdict.pod})`) : 'retry';
    }
    const replaced = await api.replace(lease(claim.resourceVersion));
    this.writes++;
    if (!replaced) return 'retry'; // someone else wrote it first: look again
    this.o.log.info({ stream: streamId, previous: claim.identity }, 'fleet: took over the claim of a pod that is gone');
    return this.taken(streamId, replaced.metadata.resourceVersion ?? '');
  }

  private async judgeHolder(claim: ClaimRecord): Promise<Verdict> {
    const { directory } = this.o;
    // Never decide on what the watch may not have caught up with.
    await directory.refreshPod(podLeaseName(podOf(claim.identity)));
    const pod = directory.presentPod(claim.identity);
    const alive = directory.livePod(claim.identity) !== undefined;
    const holder: HolderState = {
      alive,
      answers: alive && pod !== undefined && (await this.o.answers(pod.httpAddress)),
      silentMs: directory.silentFor(claim.identity),
      durationMs: pod?.durationMs ?? this.o.durationSeconds * 1000,
      draining: pod?.draining ?? false,
    };
    return judge(holder, podOf(claim.identity));
  }

  private taken(streamId: string, resourceVersion: string): AdmissionDecision {
    const held = { resourceVersion, since: this.now() };
    this.held.set(streamId, held);
    // A relay of the stream's previous owner would hold the hub's slot.
    this.o.endRelay(streamId);
    // The session gives the claim back when its publish ends or never begins (a client that left during
    // admission, a key the hub refused), so the key is free at once instead of after a sweep. Only this
    // admission's claim: a later publisher of the key on this pod holds a claim of its own.
    const release = () =>
      void this.serialized(streamId, () => (this.held.get(streamId) === held ? this.release(streamId) : Promise.resolve()));
    return { allow: true, lease: { attach: () => {}, release } };
  }

  private async release(streamId: string, evenIfLive = false): Promise<void> {
    const held = this.held.get(streamId);
    if (!held || (!evenIfLive && this.localPublisher(streamId))) return;
    this.held.delete(streamId);
    try {
      await this.o.api.delete(claimName(this.o.fleet, streamId), held.resourceVersion);
      this.writes++;
    } catch (err) {
      // It stays until a sweep of whoever publishes the key next (its holder's Lease will have gone).
      this.o.log.warn({ err: String(err), stream: streamId }, 'fleet: could not delete a stream claim');
    }
  }

  private readonly onUnpublish = (stream: Stream): void => {
    if (stream.publisher.protocol === 'relay' || !this.held.has(stream.id)) return;
    void this.serialized(stream.id, () => this.release(stream.id));
  };

  /** A claim we hold changed hands (we were taken for dead) or vanished: our publisher must stop. */
  private readonly onClaim = (streamId: string, claim: ClaimRecord | undefined): void => {
    if (!this.held.has(streamId) || claim?.identity === this.o.identity) return;
    this.held.delete(streamId);
    const stream = this.localPublisher(streamId);
    if (!stream) return;
    this.o.log.warn({ stream: streamId, holder: claim?.identity }, 'fleet: lost the claim of a live stream; ending its publisher');
    stream.publisher.close('claim_lost');
  };
}
