// Status of an RtmpServer, computed from its Deployment: the Ready,
// Progressing and Degraded conditions (plus ServiceMonitorReady when asked
// for), with lastTransitionTime moving only when a condition's status does.
import type { Condition, RtmpServer, RtmpServerStatus } from '../api/rtmpserver.ts';
import { endpoints, selectorString } from './desired.ts';

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

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

export const findCondition = (status: RtmpServerStatus | undefined, type: string): Condition | undefined =>
  status?.conditions?.find((c) => c.type === type);

/** What the reconcile observed, beyond the resource itself. */
export interface Observed {
  deployment?: {
    metadata?: { generation?: number };
    status?: {
      observedGeneration?: number;
      replicas?: number;
      readyReplicas?: number;
      updatedReplicas?: number;
      availableReplicas?: number;
      conditions?: { type: string; status: string; reason?: string; message?: string }[];
    };
  };
  /** What could not be applied, one message per child. */
  errors: string[];
  /** Secrets spec.auth names that do not exist. */
  missingSecrets?: readonly { name: string; field: string }[];
  /** Only when a ServiceMonitor is asked for: whether it could be applied. */
  serviceMonitor?: { ok: boolean; reason: string; message: string };
}

export function computeStatus(server: RtmpServer, observed: Observed, now: string): RtmpServerStatus {
  const generation = server.metadata.generation;
  const desired = server.spec.replicas;
  const dep = observed.deployment;
  const s = dep?.status ?? {};
  const replicas = s.replicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  const updated = s.updatedReplicas ?? 0;
  const available = s.availableReplicas ?? 0;
  const depCondition = (type: string) => s.conditions?.find((c) => c.type === type);
  const current = dep !== undefined && (s.observedGeneration ?? 0) >= (dep.metadata?.generation ?? 0);
  const rolledOut = current && updated >= desired && replicas === updated && available >= desired;

  let conditions: Condition[] = [...(server.status?.conditions ?? [])];
  const set = (c: ConditionInput) => (conditions = setCondition(conditions, c, now, generation));

  const deadline = depCondition('Progressing');
  const failure = depCondition('ReplicaFailure');
  if (observed.errors.length) {
    set({ type: 'Degraded', status: 'True', reason: 'ReconcileFailed', message: observed.errors.join('; ') });
  } else if (observed.missingSecrets?.length) {
    set({ type: 'Degraded', status: 'True', reason: 'SecretNotFound', message: missingSecretsMessage(server, observed.missingSecrets) });
  } else if (deadline?.status === 'False' && deadline.reason === 'ProgressDeadlineExceeded') {
    set({ type: 'Degraded', status: 'True', reason: 'ProgressDeadlineExceeded', message: deadline.message ?? 'the rollout stalled' });
  } else if (failure?.status === 'True') {
    set({
      type: 'Degraded',
      status: 'True',
      reason: failure.reason ?? 'ReplicaFailure',
      message: failure.message ?? 'pods cannot be created',
    });
  } else {
    set({ type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no problems seen' });
  }

  if (!dep) {
    set({ type: 'Progressing', status: 'True', reason: 'Creating', message: 'the Deployment is being created' });
  } else if (!rolledOut) {
    set({
      type: 'Progressing',
      status: 'True',
      reason: 'RollingOut',
      message: `${updated} of ${desired} pods updated, ${available} available`,
    });
  } else {
    set({ type: 'Progressing', status: 'False', reason: 'RolloutComplete', message: `${desired} pods up to date` });
  }

  const availableCond = depCondition('Available');
  if (desired === 0) {
    set({ type: 'Ready', status: 'False', reason: 'ScaledToZero', message: 'spec.replicas is 0' });
  } else if (dep && availableCond?.status === 'True' && ready >= desired) {
    set({ type: 'Ready', status: 'True', reason: 'Available', message: `${ready} of ${desired} pods ready` });
  } else {
    set({ type: 'Ready', status: 'False', reason: 'PodsNotReady', message: `${ready} of ${desired} pods ready` });
  }

  if (observed.serviceMonitor) {
    const sm = observed.serviceMonitor;
    set({ type: 'ServiceMonitorReady', status: sm.ok ? 'True' : 'False', reason: sm.reason, message: sm.message });
  } else {
    conditions = conditions.filter((c) => c.type !== 'ServiceMonitorReady');
  }

  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    replicas,
    readyReplicas: ready,
    selector: selectorString(server),
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

/** The Degraded message for Secrets spec.auth names that do not exist. */
export const missingSecretsMessage = (server: RtmpServer, missing: readonly { name: string; field: string }[]): string =>
  `${missing.map((m) => `Secret "${m.name}" (${m.field})`).join(', ')} not found in namespace ${server.metadata.namespace}: the pods cannot start until ${missing.length > 1 ? 'they exist' : 'it exists'}`;
