import { describe, expect, it } from 'vitest';
import { apiVersion, kind, parseSpec, type RtmpServer, type RtmpServerSpecInput } from '../api/rtmpserver.ts';
import { computeStatus, findCondition, sameStatus, setCondition, type Observed } from './status.ts';

const server = (spec: RtmpServerSpecInput = {}, status?: RtmpServer['status']): RtmpServer => ({
  apiVersion,
  kind,
  metadata: { name: 'edge', namespace: 'media', uid: 'u', generation: 2 },
  spec: parseSpec(spec),
  ...(status ? { status } : {}),
});
const available = (n: number, gen = 1): Observed['deployment'] => ({
  metadata: { generation: gen },
  status: {
    observedGeneration: gen,
    replicas: n,
    readyReplicas: n,
    updatedReplicas: n,
    availableReplicas: n,
    conditions: [{ type: 'Available', status: 'True' }],
  },
});

describe('conditions', () => {
  it('keeps lastTransitionTime while the status stays, moves it when the status flips', () => {
    let c = setCondition([], { type: 'Ready', status: 'False', reason: 'PodsNotReady', message: '0 of 1' }, 't1');
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'PodsNotReady', message: 'still 0 of 1' }, 't2');
    expect(c[0]).toMatchObject({ lastTransitionTime: 't1', message: 'still 0 of 1' });
    c = setCondition(c, { type: 'Ready', status: 'True', reason: 'Available', message: '1 of 1' }, 't3', 4);
    expect(c[0]).toMatchObject({ status: 'True', lastTransitionTime: 't3', observedGeneration: 4 });
  });

  it('reports Ready, not Progressing, not Degraded for an available, rolled-out Deployment', () => {
    const s = computeStatus(server(), { deployment: available(1), errors: [] }, 'now');
    expect(s.observedGeneration).toBe(2);
    expect(s.replicas).toBe(1);
    expect(s.readyReplicas).toBe(1);
    expect(s.selector).toBe('app.kubernetes.io/name=rtmpd,app.kubernetes.io/instance=edge');
    expect(findCondition(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Available', observedGeneration: 2 });
    expect(findCondition(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'RolloutComplete' });
    expect(findCondition(s, 'Degraded')).toMatchObject({ status: 'False' });
    expect(s.endpoints).toEqual({
      rtmp: 'rtmp://edge.media.svc:1935/live',
      httpFlv: 'http://edge.media.svc:8082/live',
      api: 'http://edge.media.svc:8082/api/v1',
    });
  });

  it('reports a rollout in progress and pods not ready', () => {
    const dep = available(1, 2);
    dep!.status!.observedGeneration = 1;
    const s = computeStatus(server({ replicas: 2 }), { deployment: dep, errors: [] }, 'now');
    expect(findCondition(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'RollingOut' });
    expect(findCondition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'PodsNotReady' });
  });

  it('reports Degraded for a failed apply and for a stalled rollout', () => {
    expect(findCondition(computeStatus(server(), { errors: ['boom'] }, 'now'), 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'ReconcileFailed',
      message: 'boom',
    });
    const dep = available(0);
    dep!.status!.conditions = [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'stuck' }];
    expect(findCondition(computeStatus(server(), { deployment: dep, errors: [] }, 'now'), 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'ProgressDeadlineExceeded',
    });
  });

  it('reports a Secret that spec.auth names and that does not exist, with the field that names it', () => {
    const missing = [{ name: 'edge-stream-keys', field: 'spec.auth.rules[0].keysSecret' }];
    expect(
      findCondition(computeStatus(server(), { errors: [], deployment: available(1), missingSecrets: missing }, 'now'), 'Degraded'),
    ).toMatchObject({
      status: 'True',
      reason: 'SecretNotFound',
      message:
        'Secret "edge-stream-keys" (spec.auth.rules[0].keysSecret) not found in namespace media: the pods cannot start until it exists',
    });
  });

  it('says ScaledToZero at zero replicas', () => {
    expect(findCondition(computeStatus(server({ replicas: 0 }), { deployment: available(0), errors: [] }, 'now'), 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ScaledToZero',
    });
  });

  it('adds ServiceMonitorReady only when a ServiceMonitor is asked for', () => {
    const s = computeStatus(
      server(),
      { deployment: available(1), errors: [], serviceMonitor: { ok: false, reason: 'CRDNotInstalled', message: 'm' } },
      'now',
    );
    expect(findCondition(s, 'ServiceMonitorReady')).toMatchObject({ status: 'False', reason: 'CRDNotInstalled' });
    expect(
      findCondition(computeStatus(server({}, s), { deployment: available(1), errors: [] }, 'now'), 'ServiceMonitorReady'),
    ).toBeUndefined();
  });

  it('computes the same status twice from the same observation, so no second write happens', () => {
    const first = computeStatus(server(), { deployment: available(1), errors: [] }, 't1');
    const second = computeStatus(server({}, first), { deployment: available(1), errors: [] }, 't2');
    expect(sameStatus(first, second)).toBe(true);
    expect(sameStatus({ a: 1, b: [1] }, { b: [1], a: 1 })).toBe(true);
    expect(sameStatus({ a: 1 }, { a: 2 })).toBe(false);
  });
});
