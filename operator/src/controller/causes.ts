// Why the pods of an RtmpServer do not come up, read from what the API server
// already knows: the pods' conditions and container states, the claims'
// phases and Warning Events, the StatefulSet's FailedCreate Events (a pod the
// admission chain refused), and the Secrets spec.auth names that do not
// exist or that rtmpd cannot use. Each cause keeps the specific message, so the
// status says "0/2 nodes are available: 2 Insufficient cpu", not "timed out".
import { certificateExpiry } from '@flux-rtmpd/rtmpd/tls-expiry';

export interface Cause {
  /** CamelCase, the Stalled condition's reason. */
  reason: string;
  message: string;
}

interface ContainerView {
  name: string;
  ready?: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string; message?: string } };
  lastState?: { terminated?: { exitCode?: number; reason?: string; message?: string; finishedAt?: Date | string } };
}

export interface PodView {
  metadata?: { name?: string; deletionTimestamp?: unknown };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: ContainerView[];
    initContainerStatuses?: ContainerView[];
  };
}

export interface ClaimView {
  metadata?: { name?: string };
  status?: { phase?: string };
}

/**
 * The longest Event message and reason the causes quote (the operator caches no more):
 * the events.k8s.io API's bounds on a note and a reason. A core/v1 Event's are
 * bounded only by the size of a request.
 */
export const maxEventMessage = 1024;
export const maxEventReason = 128;

export interface EventView {
  type?: string;
  reason?: string;
  message?: string;
  involvedObject?: { kind?: string; name?: string };
  lastTimestamp?: Date | string;
  eventTime?: Date | string;
}

// Container waiting reasons that will not clear by themselves (CrashLoopBackOff: see crashLooping).
const stuckContainer = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

/**
 * How long a failed container counts as crash-looping: the kubelet forgets a
 * container's back-off once it has run this long (twice its longest, 5-minute,
 * delay) without failing.
 */
export const crashLoopWindowMs = 10 * 60_000;
/** The end of a container's termination message kept in a cause: rtmpd writes one line, the log's tail (its fallback) can be long. */
export const maxTerminationMessage = 1024;

/**
 * A container in a crash loop: waiting in CrashLoopBackOff, or, between two
 * back-offs, started again but not ready with a failure within the window.
 * The second case keeps a crash-looping pod Stalled while the kubelet tries it
 * once more, instead of Reconciling (PodsStarting) until it fails again.
 */
function crashLooping(c: ContainerView, now: Date): boolean {
  if (c.state?.waiting?.reason === 'CrashLoopBackOff') return true;
  const failed = c.lastState?.terminated;
  if (c.ready || !failed || failed.exitCode === 0 || !c.restartCount) return false;
  return now.getTime() - new Date(failed.finishedAt ?? 0).getTime() <= crashLoopWindowMs;
}

/** How the container last ended, with the end of what it said (its termination message or, with FallbackToLogsOnError, its last log lines). */
function lastFailure(c: ContainerView): string {
  const failed = c.lastState?.terminated;
  if (!failed) return `restarted ${c.restartCount ?? 0} times`;
  const said = (failed.message ?? '').trim().replace(/\s*\n\s*/g, ' | ');
  const tail = said.length > maxTerminationMessage ? `…${said.slice(-maxTerminationMessage)}` : said;
  return `restarted ${c.restartCount ?? 0} times, last exit code ${failed.exitCode ?? '?'}${failed.reason ? ` (${failed.reason})` : ''}${tail ? `: ${tail}` : ''}`;
}

/** The cause a container gives, if it is stuck. */
function containerCause(pod: string, c: ContainerView, now: Date): Cause | undefined {
  if (crashLooping(c, now))
    return { reason: 'CrashLoopBackOff', message: `pod ${pod}, container ${c.name}: CrashLoopBackOff: ${lastFailure(c)}` };
  const waiting = c.state?.waiting;
  if (!waiting?.reason || !stuckContainer.has(waiting.reason)) return undefined;
  return {
    reason: waiting.reason,
    message: `pod ${pod}, container ${c.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
  };
}

/** Pods that cannot be scheduled or whose container cannot run. */
export function podCauses(pods: readonly PodView[], now: Date): Cause[] {
  const causes: Cause[] = [];
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const name = pod.metadata?.name ?? '';
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      causes.push({ reason: 'PodUnschedulable', message: `pod ${name} cannot be scheduled: ${scheduled.message ?? 'no reason given'}` });
      continue;
    }
    for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const cause = containerCause(name, c, now);
      if (cause) causes.push(cause);
    }
  }
  return causes;
}

/**
 * The Events the causes below read, as the API server's field selectors
 * (which have no "or"): the operator watches these alone, so a namespace's
 * other Events (a pod's, thousands of them when it cannot schedule) are
 * never cached. A StatefulSet's FailedCreate Warnings, a claim's Warnings,
 * and a claim's FailedBinding of another type (blocksClaim).
 */
export const eventSelectors: readonly string[] = [
  'involvedObject.kind=StatefulSet,type=Warning,reason=FailedCreate',
  'involvedObject.kind=PersistentVolumeClaim,type=Warning',
  'involvedObject.kind=PersistentVolumeClaim,type!=Warning,reason=FailedBinding',
];

const time = (e: EventView): number => new Date(e.lastTimestamp ?? e.eventTime ?? 0).getTime();
/**
 * The newest matching Event, if it is recent: a controller that keeps failing
 * keeps raising its Event's lastTimestamp, so an older one is a past problem.
 */
const recentEvent = (events: readonly EventView[], now: Date, matches: (e: EventView) => boolean): EventView | undefined =>
  events.filter((e) => matches(e) && now.getTime() - time(e) <= recentMs).sort((a, b) => time(b) - time(a))[0];
export const recentMs = 5 * 60_000;

/**
 * A claim's Events that say it will not bind by itself: Warnings (provisioning
 * failed), and FailedBinding, which the PV controller records as Normal when no
 * StorageClass is set and the cluster has no default one.
 */
const blocksClaim = (e: EventView): boolean => e.type === 'Warning' || e.reason === 'FailedBinding';

/** Claims that stay Pending (no StorageClass, no volume, provisioning failed), by their newest such Event. */
export function claimCauses(claims: readonly ClaimView[], events: readonly EventView[], now: Date): Cause[] {
  return claims.flatMap((claim) => {
    if (claim.status?.phase !== 'Pending') return [];
    const name = claim.metadata?.name ?? '';
    const warning = recentEvent(
      events,
      now,
      (e) => blocksClaim(e) && e.involvedObject?.kind === 'PersistentVolumeClaim' && e.involvedObject.name === name,
    );
    return warning ? [{ reason: 'ClaimPending', message: `claim ${name} is Pending: ${warning.reason}: ${warning.message ?? ''}` }] : [];
  });
}

/** Pods the StatefulSet could not create, e.g. refused by Pod Security admission or a quota. */
export function creationCauses(workload: string, events: readonly EventView[], now: Date): Cause[] {
  const failed = recentEvent(
    events,
    now,
    (e) =>
      e.type === 'Warning' && e.reason === 'FailedCreate' && e.involvedObject?.kind === 'StatefulSet' && e.involvedObject.name === workload,
  );
  return failed ? [{ reason: 'PodCreationFailed', message: `the StatefulSet cannot create pods: ${failed.message ?? ''}` }] : [];
}

/** Claims named by the spec (existingClaim) that do not exist. */
export const missingClaimCauses = (missing: readonly string[]): Cause[] =>
  missing.map((name) => ({
    reason: 'ClaimNotFound',
    message: `storage names the existing claim ${name}, which does not exist in this namespace`,
  }));

/** Secrets spec.auth names that do not exist: the pods cannot mount them. */
export function missingSecretsCause(namespace: string, missing: readonly { name: string; field: string }[]): Cause | undefined {
  if (!missing.length) return undefined;
  return {
    reason: 'SecretNotFound',
    message: `${missing.map((m) => `Secret "${m.name}" (${m.field})`).join(', ')} not found in namespace ${namespace}: the pods cannot start until ${missing.length > 1 ? 'they exist' : 'it exists'}`,
  };
}

/** Secrets that exist but lack a key the spec names or hold what rtmpd cannot use (controller/secrets.ts's words). */
export function invalidSecretsCause(invalid: readonly { name: string; field: string; problem: string }[]): Cause | undefined {
  if (!invalid.length) return undefined;
  return {
    reason: 'SecretInvalid',
    message: invalid.map((i) => `Secret "${i.name}" (${i.field}) ${i.problem}`).join('; '),
  };
}

/** An expired spec.tls certificate (TLS clients refuse it), or one that expires within rtmpd's certificateWarningMs. */
export function certificateCause(ref: { name: string; field: string }, notAfter: Date, now: Date): Cause | undefined {
  const expiry = certificateExpiry(notAfter, now);
  const secret = `Secret "${ref.name}" (${ref.field})`;
  if (expiry.state === 'expired')
    return {
      reason: 'CertificateExpired',
      message: `${secret}: the certificate in tls.crt expired at ${notAfter.toISOString()}: RTMPS and HTTPS clients refuse it`,
    };
  if (expiry.state === 'valid') return undefined;
  return {
    reason: 'CertificateExpiring',
    message: `${secret}: the certificate in tls.crt expires at ${notAfter.toISOString()}, in ${expiry.left}`,
  };
}

/**
 * Causes that stop new pods, not the pods that run: the kubelet keeps the last
 * files of a deleted Secret, rtmpd the last good value of one it refuses, and
 * a value that serves nobody or an expired certificate refuses clients, not
 * the pods. The status stays Stalled on them, with the message saying what is
 * refused, while Ready says what the pods say.
 */
export const podsServeThrough: ReadonlySet<string> = new Set(['SecretNotFound', 'SecretInvalid', 'CertificateExpired']);

/** A claim the spec grows whose StorageClass does not allow it: the API server refuses every such patch. */
export function notExpandableCause(claim: string, wanted: string, storageClass: string | undefined, current: string | undefined): Cause {
  const why = storageClass
    ? `its StorageClass ${storageClass} does not allow volume expansion (allowVolumeExpansion)`
    : 'it has no StorageClass, and only a claim whose StorageClass allows volume expansion can grow';
  return {
    reason: 'ClaimNotExpandable',
    message: `claim ${claim} cannot grow to ${wanted}: ${why}${current ? `; it stays at ${current}` : ''}`,
  };
}
