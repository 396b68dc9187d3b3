// The status of an RtmpServer, in kstatus terms (what Flux, kpt and
// `kubectl wait` read): Reconciling while the children move towards the spec,
// Stalled when they cannot get there without a change (a child the API server
// refused, pods that cannot be scheduled, created or started, claims that do
// not bind), never both at once; Ready only when every child reflects this
// generation and every pod is ready, also while Stalled on a Secret the
// running pods go on without. lastTransitionTime moves only when a
// condition's status does.
import type { Condition, RtmpServer, RtmpServerStatus } from '../api/rtmpserver.ts';
import { podsServeThrough, type Cause } from './causes.ts';
import { endpoints } from './desired.ts';
import type { FleetCounts } from './fleet-status.ts';
import { selectorString } from './manifest.ts';

type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** Sets one condition, keeping lastTransitionTime when its status is unchanged. */
export function setCondition(conditions: readonly Condition[], next: ConditionInput, now: string, generation?: number): Condition[] {
  const old = conditions.find((c) => c.type === next.type);
  const merged: Condition = {
    type: next.type,
    status: next.status,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : now,
    reason: next.reason,
    message: next.message,
  };
  return [...conditions.filter((c) => c.type !== next.type), merged].sort((a, b) => a.type.localeCompare(b.type));
}

const notReconcilingWhileStalled: ConditionInput = {
  type: 'Reconciling',
  status: 'False',
  reason: 'Stalled',
  message: 'no progress without a change: see the Stalled condition',
};

/**
 * The status of a spec the operator cannot parse, which the API server admitted
 * under an older, looser CRD: Stalled on it for this generation, never Ready;
 * the rest (what runs) as it was, since nothing was applied.
 */
export function invalidSpecStatus(
  current: RtmpServerStatus | undefined,
  generation: number | undefined,
  why: string,
  now: string,
): RtmpServerStatus {
  let conditions: Condition[] = [...(current?.conditions ?? [])];
  const set = (c: ConditionInput) => (conditions = setCondition(conditions, c, now, generation));
  set({ type: 'Stalled', status: 'True', reason: 'InvalidSpec', message: why });
  set(notReconcilingWhileStalled);
  set({ type: 'Ready', status: 'False', reason: 'InvalidSpec', message: why });
  return { ...current, ...(generation !== undefined ? { observedGeneration: generation } : {}), conditions };
}

/**
 * A condition's message, at most this long: the API server refuses a status
 * whose message passes 32768 characters, and 200 unschedulable pods, each
 * with the scheduler's words, pass it.
 */
export const maxConditionMessage = 8192;

/** The parts, joined, as many as fit; the count of those left out closes the message. */
export function joinBounded(parts: readonly string[]): string {
  let message = '';
  for (const [i, part] of parts.entries()) {
    const next = i === 0 ? part : `${message}; ${part}`;
    const rest = parts.length - i - 1;
    const tail = rest > 0 ? `; and ${rest} more` : '';
    if (next.length + tail.length <= maxConditionMessage) {
      message = next;
      continue;
    }
    // The first part alone is too long: its start says more than a count.
    if (i === 0) return `${part.slice(0, maxConditionMessage - tail.length - 1)}…${tail}`;
    return `${message}; and ${parts.length - i} more`;
  }
  return message;
}

/** What the reconcile observed, beyond the resource itself. */
export interface Observed {
  statefulSet?: {
    metadata?: { generation?: number };
    spec?: { template?: { spec?: { containers?: { name: string; image?: string }[] } } };
    status?: {
      observedGeneration?: number;
      replicas?: number;
      readyReplicas?: number;
      updatedReplicas?: number;
      currentRevision?: string;
      updateRevision?: string;
    };
  };
  /** What could not be applied, one message per child. */
  errors: string[];
  /** Why the pods do not come up, when the API server says why. */
  causes: Cause[];
  /** Set while a server made by operator 0.1.0 moves to its StatefulSet: what is happening. */
  migrating?: string;
  /** Only when a ServiceMonitor is asked for: whether it could be applied. */
  serviceMonitor?: { ok: boolean; reason: string; message: string };
  /** What the pods report in their fleet Leases. */
  fleet?: FleetCounts;
}

/** A condition's reason and message. */
type Phase = { reason: string; message: string };

/** The StatefulSet's progress towards its spec, in words, or undefined when it is there. */
function rollout(desired: number, sts: Observed['statefulSet']): Phase | undefined {
  if (!sts) return { reason: 'Creating', message: 'the StatefulSet is being created' };
  const s = sts.status ?? {};
  if ((s.observedGeneration ?? 0) < (sts.metadata?.generation ?? 1)) {
    return { reason: 'RollingOut', message: 'the StatefulSet controller has not seen the latest pod template yet' };
  }
  const replicas = s.replicas ?? 0;
  const updated = s.updatedReplicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  if (desired > 0 && updated < desired)
    return { reason: 'RollingOut', message: `${updated} of ${desired} pods run the current template, ${ready} ready` };
  if (replicas !== desired) return { reason: 'Scaling', message: `${replicas} pods, ${desired} wanted` };
  if (desired > 0 && s.currentRevision !== s.updateRevision) return { reason: 'RollingOut', message: 'the last pods are being replaced' };
  if (ready < desired) return { reason: 'PodsStarting', message: `${ready} of ${desired} pods ready` };
  return undefined;
}

/**
 * The facts the conditions are made of: what stalls the server, what is still
 * moving towards the spec, and whether the stall keeps the pods from serving.
 */
interface Assessment {
  stalled: Phase | undefined;
  progress: Phase | undefined;
  blocksPods: boolean;
}

function assess(server: RtmpServer, observed: Observed): Assessment {
  const stalled = observed.errors.length
    ? { reason: 'ApplyFailed', message: joinBounded(observed.errors) }
    : observed.causes.length
      ? { reason: observed.causes[0]!.reason, message: joinBounded(observed.causes.map((c) => c.message)) }
      : undefined;
  const progress = observed.migrating
    ? { reason: 'Migrating', message: observed.migrating }
    : rollout(server.spec.replicas, observed.statefulSet);
  // A stall that leaves the pods serving (a Secret gone bad under them, causes.ts podsServeThrough) does not make them unready.
  const blocksPods = observed.errors.length > 0 || observed.causes.some((c) => !podsServeThrough.has(c.reason));
  return { stalled, progress, blocksPods };
}

/**
 * Whether the server is where its spec wants it, as its conditions say:
 * neither Stalled nor Reconciling. Until then the reconcile looks again, as
 * not every change that moves it on is watched.
 */
export function settled(server: RtmpServer, observed: Observed): boolean {
  const { stalled, progress } = assess(server, observed);
  return !stalled && !progress;
}

export function computeStatus(server: RtmpServer, observed: Observed, now: string): RtmpServerStatus {
  const generation = server.metadata.generation;
  const desired = server.spec.replicas;
  const s = observed.statefulSet?.status ?? {};
  const ready = s.readyReplicas ?? 0;
  let conditions: Condition[] = [...(server.status?.conditions ?? [])];
  const set = (c: ConditionInput) => (conditions = setCondition(conditions, c, now, generation));
  const { stalled, progress, blocksPods } = assess(server, observed);

  if (stalled) {
    set({ type: 'Stalled', status: 'True', ...stalled });
    set(notReconcilingWhileStalled);
  } else {
    set({ type: 'Stalled', status: 'False', reason: 'NoProblems', message: 'nothing blocks the reconcile' });
    set(
      progress
        ? { type: 'Reconciling', status: 'True', ...progress }
        : { type: 'Reconciling', status: 'False', reason: 'Reconciled', message: `every child reflects generation ${generation ?? 0}` },
    );
  }

  // Ready says whether the pods serve: a stall that leaves them serving is Stalled alone, so Ready claims neither more nor less than runs.
  const podsReady = `${ready} of ${desired} pods ready`;
  if (stalled && blocksPods) set({ type: 'Ready', status: 'False', ...stalled });
  else if (progress) set({ type: 'Ready', status: 'False', ...progress });
  else if (desired === 0) set({ type: 'Ready', status: 'False', reason: 'ScaledToZero', message: 'spec.replicas is 0: no pod serves' });
  else if (stalled)
    set({ type: 'Ready', status: 'True', reason: 'PodsReady', message: `${podsReady}; see Stalled for a Secret they cannot use` });
  else set({ type: 'Ready', status: 'True', reason: 'PodsReady', message: podsReady });

  if (observed.serviceMonitor) {
    const sm = observed.serviceMonitor;
    set({ type: 'ServiceMonitorReady', status: sm.ok ? 'True' : 'False', reason: sm.reason, message: sm.message });
  } else {
    conditions = conditions.filter((c) => c.type !== 'ServiceMonitorReady');
  }
  // Conditions of the previous operator version.
  conditions = conditions.filter((c) => c.type !== 'Progressing' && c.type !== 'Degraded');

  const image =
    !progress && !(stalled && blocksPods)
      ? observed.statefulSet?.spec?.template?.spec?.containers?.find((c) => c.name === 'rtmpd')?.image
      : undefined;
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    replicas: s.replicas ?? 0,
    readyReplicas: ready,
    selector: selectorString(server),
    ...(image ? { image } : server.status?.image ? { image: server.status.image } : {}),
    ...observed.fleet,
    conditions,
    endpoints: endpoints(server),
  };
}

/** Deep equality that ignores key order, for "write status only when it changed". */
export function sameStatus(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
