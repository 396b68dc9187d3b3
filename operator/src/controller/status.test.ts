import { describe, expect, it } from 'vitest';
import { apiVersion, kind, parseSpec, type RtmpServer, type RtmpServerSpecInput } from '../api/rtmpserver.ts';
import { computeStatus, joinBounded, maxConditionMessage, sameStatus, setCondition, type Observed } from './status.ts';

const server = (spec: RtmpServerSpecInput = {}, status?: RtmpServer['status']): RtmpServer => ({
  apiVersion,
  kind,
  metadata: { name: 'edge', namespace: 'media', uid: 'u', generation: 2 },
  spec: parseSpec(spec),
  ...(status ? { status } : {}),
});
const findCondition = (status: RtmpServer['status'], type: string) => status?.conditions?.find((c) => c.type === type);
/** A StatefulSet whose controller saw its latest spec and finished: n pods of the current revision, all ready. */
const rolledOut = (n: number, image = 'rtmpd:1'): NonNullable<Observed['statefulSet']> => ({
  metadata: { generation: 1 },
  spec: { template: { spec: { containers: [{ name: 'rtmpd', image }] } } },
  status: { observedGeneration: 1, replicas: n, readyReplicas: n, updatedReplicas: n, currentRevision: 'r1', updateRevision: 'r1' },
});
const observed = (o: Partial<Observed> = {}): Observed => ({ errors: [], causes: [], ...o });
const conditions = (s: ReturnType<typeof computeStatus>) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, `${c.status} ${c.reason}`]));

describe('conditions', () => {
  it('keeps lastTransitionTime while the status stays, moves it when the status flips', () => {
    let c = setCondition([], { type: 'Ready', status: 'False', reason: 'PodsStarting', message: '0 of 1' }, 't1');
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'PodsStarting', message: 'still 0 of 1' }, 't2');
    expect(c[0]).toMatchObject({ lastTransitionTime: 't1', message: 'still 0 of 1' });
    c = setCondition(c, { type: 'Ready', status: 'True', reason: 'PodsReady', message: '1 of 1' }, 't3', 4);
    expect(c[0]).toMatchObject({ status: 'True', lastTransitionTime: 't3', observedGeneration: 4 });
  });

  it('is Ready, not Reconciling, not Stalled when every pod of the current template is ready', () => {
    const s = computeStatus(server(), observed({ statefulSet: rolledOut(1) }), 'now');
    expect(conditions(s)).toEqual({ Ready: 'True PodsReady', Reconciling: 'False Reconciled', Stalled: 'False NoProblems' });
    expect(s).toMatchObject({ observedGeneration: 2, replicas: 1, readyReplicas: 1, image: 'rtmpd:1' });
    expect(s.selector).toBe('app.kubernetes.io/name=rtmpd,app.kubernetes.io/instance=edge');
    for (const c of s.conditions ?? []) expect(c.observedGeneration).toBe(2);
    expect(s.endpoints).toEqual({
      rtmp: 'rtmp://edge.media.svc:1935/live',
      httpFlv: 'http://edge.media.svc:8082/live',
      api: 'http://edge.media.svc:8082/api/v1',
    });
  });

  it('is Reconciling (never Ready) while the StatefulSet is created, rolls out, scales or starts pods', () => {
    const cases: [Observed['statefulSet'], number, string][] = [
      [undefined, 1, 'Creating'],
      [{ ...rolledOut(1), metadata: { generation: 2 } }, 1, 'RollingOut'],
      [{ ...rolledOut(2), status: { ...rolledOut(2).status, updatedReplicas: 1 } }, 2, 'RollingOut'],
      [{ ...rolledOut(2), status: { ...rolledOut(2).status, updateRevision: 'r2' } }, 2, 'RollingOut'],
      [rolledOut(1), 3, 'RollingOut'],
      [rolledOut(3), 1, 'Scaling'],
      [{ ...rolledOut(2), status: { ...rolledOut(2).status, readyReplicas: 1 } }, 2, 'PodsStarting'],
    ];
    for (const [sts, replicas, reason] of cases) {
      const s = computeStatus(server({ replicas }), observed({ statefulSet: sts }), 'now');
      expect(conditions(s), reason).toEqual({ Ready: `False ${reason}`, Reconciling: `True ${reason}`, Stalled: 'False NoProblems' });
      // the running image is reported once a rollout completed, not before
      expect(s.image).toBeUndefined();
    }
  });

  it('is Stalled, not Reconciling, with the child the API server refused and its message, even with every pod ready', () => {
    const s = computeStatus(
      server(),
      observed({
        statefulSet: rolledOut(1),
        errors: ['PersistentVolumeClaim recordings-edge-0: 422: field can not be less than previous value'],
      }),
      'now',
    );
    expect(conditions(s)).toEqual({ Ready: 'False ApplyFailed', Reconciling: 'False Stalled', Stalled: 'True ApplyFailed' });
    expect(findCondition(s, 'Stalled')?.message).toBe(
      'PersistentVolumeClaim recordings-edge-0: 422: field can not be less than previous value',
    );
    expect(findCondition(s, 'Ready')?.message).toContain('can not be less than previous value');
  });

  it('is Stalled with the specific cause when pods cannot come up', () => {
    const s = computeStatus(
      server(),
      observed({
        statefulSet: rolledOut(0),
        causes: [
          { reason: 'PodUnschedulable', message: 'pod edge-0 cannot be scheduled: 0/2 nodes are available: 2 Insufficient cpu' },
          { reason: 'ClaimPending', message: 'claim recordings-edge-0 is Pending: ProvisioningFailed: no such class' },
        ],
      }),
      'now',
    );
    expect(conditions(s)).toEqual({ Ready: 'False PodUnschedulable', Reconciling: 'False Stalled', Stalled: 'True PodUnschedulable' });
    expect(findCondition(s, 'Stalled')?.message).toBe(
      'pod edge-0 cannot be scheduled: 0/2 nodes are available: 2 Insufficient cpu; claim recordings-edge-0 is Pending: ProvisioningFailed: no such class',
    );
  });

  it('stays Ready on a Secret the running pods go on without, Stalled saying which, and not Ready when another cause joins', () => {
    const secret = { reason: 'SecretInvalid', message: 'Secret "keys" (spec.auth.rules[0].keysSecret) holds no stream key' };
    const s = computeStatus(server({ replicas: 2 }), observed({ statefulSet: rolledOut(2), causes: [secret] }), 'now');
    expect(conditions(s)).toEqual({ Ready: 'True PodsReady', Reconciling: 'False Stalled', Stalled: 'True SecretInvalid' });
    expect(findCondition(s, 'Ready')?.message).toBe('2 of 2 pods ready; see Stalled for a Secret they cannot use');
    expect(s.image).toBe('rtmpd:1');
    // Pods that do not run are not made Ready by it.
    const notReady = rolledOut(2);
    notReady.status!.readyReplicas = 0;
    const starting = computeStatus(server({ replicas: 2 }), observed({ statefulSet: notReady, causes: [secret] }), 'now');
    expect(conditions(starting)).toMatchObject({ Ready: 'False PodsStarting', Stalled: 'True SecretInvalid' });
    const crashing = { reason: 'CrashLoopBackOff', message: 'pod edge-1, container rtmpd: CrashLoopBackOff' };
    const both = computeStatus(server({ replicas: 2 }), observed({ statefulSet: rolledOut(2), causes: [secret, crashing] }), 'now');
    expect(conditions(both)).toMatchObject({ Ready: 'False SecretInvalid', Stalled: 'True SecretInvalid' });
  });

  it('says what the migration from operator 0.1.0 is doing', () => {
    const s = computeStatus(server(), observed({ migrating: 'copying edge-recordings → recordings-edge-0' }), 'now');
    expect(conditions(s)).toEqual({ Ready: 'False Migrating', Reconciling: 'True Migrating', Stalled: 'False NoProblems' });
  });

  it('says ScaledToZero at zero replicas, and drops the conditions of operator 0.1.0', () => {
    const old = {
      conditions: [
        { type: 'Progressing', status: 'False' as const, reason: 'RolloutComplete', message: '', lastTransitionTime: 't0' },
        { type: 'Degraded', status: 'False' as const, reason: 'AsExpected', message: '', lastTransitionTime: 't0' },
      ],
    };
    const s = computeStatus(server({ replicas: 0 }, old), observed({ statefulSet: rolledOut(0) }), 'now');
    expect(conditions(s)).toEqual({ Ready: 'False ScaledToZero', Reconciling: 'False Reconciled', Stalled: 'False NoProblems' });
  });

  it('adds ServiceMonitorReady only when a ServiceMonitor is asked for', () => {
    const s = computeStatus(
      server(),
      observed({ statefulSet: rolledOut(1), serviceMonitor: { ok: false, reason: 'CRDNotInstalled', message: 'm' } }),
      'now',
    );
    expect(findCondition(s, 'ServiceMonitorReady')).toMatchObject({ status: 'False', reason: 'CRDNotInstalled' });
    expect(
      findCondition(computeStatus(server({}, s), observed({ statefulSet: rolledOut(1) }), 'now'), 'ServiceMonitorReady'),
    ).toBeUndefined();
  });

  it('computes the same status twice from the same observation, so no second write happens', () => {
    const first = computeStatus(server(), observed({ statefulSet: rolledOut(1) }), 't1');
    const second = computeStatus(server({}, first), observed({ statefulSet: rolledOut(1) }), 't2');
    expect(sameStatus(first, second)).toBe(true);
    expect(sameStatus({ a: 1, b: [1] }, { b: [1], a: 1 })).toBe(true);
    expect(sameStatus({ a: 1 }, { a: 2 })).toBe(false);
  });
});

describe('condition messages', () => {
  it('stay within what the API server takes, however many pods share a cause, and count what they leave out', () => {
    const causes = Array.from({ length: 300 }, (_, i) => ({
      reason: 'PodUnschedulable',
      message: `pod edge-${i} cannot be scheduled: 0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.`,
    }));
    const s = computeStatus(server({ replicas: 300 }), observed({ causes, statefulSet: rolledOut(0) }), 'now');
    const message = findCondition(s, 'Stalled')?.message ?? '';
    expect(message.length).toBeLessThanOrEqual(maxConditionMessage);
    expect(message).toMatch(/^pod edge-0 cannot be scheduled: .*; and \d+ more$/);
    const shown = message.split('; pod ').length;
    expect(message.endsWith(`; and ${300 - shown} more`)).toBe(true);
  });

  it('keep the start of one part too long on its own', () => {
    expect(joinBounded(['x'.repeat(maxConditionMessage * 2)])).toBe(`${'x'.repeat(maxConditionMessage - 1)}…`);
    expect(joinBounded(['x'.repeat(maxConditionMessage * 2), 'y'])).toMatch(/^x+…; and 1 more$/);
    expect(joinBounded(['x'.repeat(maxConditionMessage * 2), 'y']).length).toBe(maxConditionMessage);
    expect(joinBounded(['a', 'b'])).toBe('a; b');
  });
});

describe('lastTransitionTime', () => {
  it('stays when only the reason changes: it marks a change of status', () => {
    let c = setCondition([], { type: 'Ready', status: 'False', reason: 'PodsStarting', message: '0 of 1' }, 't1');
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'RollingOut', message: 'the last pods are being replaced' }, 't2');
    expect(c[0]).toMatchObject({ reason: 'RollingOut', lastTransitionTime: 't1' });
  });
});

describe('joinBounded at its bound', () => {
  it('keeps a message of exactly maxConditionMessage characters whole', () => {
    const full = 'x'.repeat(maxConditionMessage);
    expect(joinBounded([full])).toBe(full);
  });
});

describe('sameStatus', () => {
  it('takes a field set to undefined as absent, so such a status is not written again', () => {
    expect(sameStatus({ replicas: 1, image: undefined }, { replicas: 1 })).toBe(true);
  });
});
