import { ApiException, type CustomObjectsApi, type KubernetesObject, type KubernetesObjectApi } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { RtmpServerStatus } from '../api/rtmpserver.ts';
import type { EventRecorder } from './events.ts';
import { createMetrics, type CertificateMetrics } from './metrics.ts';
import { fieldManager } from './manifest.ts';
import { Reconciler } from './reconcile.ts';
import { SecretVerdicts } from './secrets.ts';

// The API server cannot be made to hold this object under the current CRD
// (it refuses the spec): stand-ins take its place, and nothing else is reached.
const stored = {
  apiVersion: 'media.fluxiot.io/v1alpha1',
  kind: 'RtmpServer',
  metadata: { name: 'edge', namespace: 'media', uid: 'u', generation: 3, resourceVersion: '7' },
  spec: { auth: { rules: [{ method: 'callback', url: 'file:///etc/passwd' }] } },
  status: { observedGeneration: 2, replicas: 1, readyReplicas: 1, conditions: [] },
};

/**
 * A Reconciler over stand-ins of the API server: `server` is the cached
 * RtmpServer; the cache holds no child and the API server only those in
 * `uncached`; an apply returns what it sent, a StatefulSet with `statefulSet`
 * as its status (what the StatefulSet controller would write), a child in
 * `uncached` as changed by our Apply at `now`.
 */
function standInReconciler({
  server = stored,
  statefulSet = {},
  certificates = { set() {}, remove() {} },
  uncached = [],
}: { server?: object; statefulSet?: object; certificates?: CertificateMetrics; uncached?: KubernetesObject[] } = {}) {
  const written: RtmpServerStatus[] = [];
  const events: string[] = [];
  const now = new Date('2026-11-30T14:00:00Z');
  const held = (o: KubernetesObject) => uncached.find((u) => u.kind === o.kind && u.metadata?.name === o.metadata?.name);
  const reconciler = new Reconciler({
    objects: {
      patch: async (o: KubernetesObject) => {
        if (o.kind === 'StatefulSet') return { ...o, metadata: { ...o.metadata, generation: 1 }, status: statefulSet };
        const live = held(o);
        if (!live) return o;
        const resourceVersion = String(Number(live.metadata?.resourceVersion) + 1);
        const managedFields = [{ manager: fieldManager, operation: 'Apply', time: now }];
        return { ...o, metadata: { ...o.metadata, creationTimestamp: live.metadata?.creationTimestamp, resourceVersion, managedFields } };
      },
      create: async (o: KubernetesObject) => o,
      read: async (o: KubernetesObject) => {
        const live = held(o);
        if (!live) throw new ApiException(404, 'not found', {}, {});
        return live;
      },
    } as unknown as KubernetesObjectApi,
    customObjects: {
      patchNamespacedCustomObjectStatus: async ({ body }: { body: { status: RtmpServerStatus } }) => written.push(body.status),
    } as unknown as CustomObjectsApi,
    events: {
      event: async (_o: KubernetesObject, type: string, reason: string, message: string) =>
        void events.push(`${type} ${reason}: ${message}`),
    } as EventRecorder,
    readSecret: async () => undefined,
    secretVersion: () => undefined,
    secretVerdicts: new SecretVerdicts(() => true),
    certificates,
    defaults: { image: 'rtmpd:1', transcodeImage: 'rtmpd:1-transcode' },
    log: pino({ level: 'silent' }),
    getServer: () => server,
    getOwned: () => undefined,
    listOwned: () => [],
    listFleetLeases: () => [],
    eventsAbout: () => [],
    now: () => now,
  });
  return { reconciler, written, events };
}

describe('Reconciler', () => {
  it('reports a stored spec it cannot parse as Stalled and not Ready for that generation, without applying anything', async () => {
    const { reconciler, written, events } = standInReconciler();

    expect(await reconciler.reconcile('media', 'edge')).toEqual({});
    expect(written).toHaveLength(1);
    const status = written[0]!;
    expect(status.observedGeneration).toBe(3);
    const byType = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c]));
    expect(byType.Ready).toMatchObject({ status: 'False', reason: 'InvalidSpec', observedGeneration: 3 });
    expect(byType.Reconciling).toMatchObject({ status: 'False', reason: 'Stalled' });
    expect(byType.Stalled).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(byType.Stalled?.message).toBe('invalid spec: spec.auth.rules.0.url: Invalid URL');
    expect(status).toMatchObject({ replicas: 1, readyReplicas: 1 });
    expect(events).toEqual(['Warning InvalidSpec: invalid spec: spec.auth.rules.0.url: Invalid URL']);

    // Nothing changed: the next reconcile writes nothing.
    await reconciler.reconcile('media', 'edge');
    expect(written).toHaveLength(1);
  });

  it("drops the server's certificate series when its stored spec cannot be parsed", async () => {
    const metrics = createMetrics('rtmpserver');
    const series = 'rtmpd_operator_certificate_expiration_timestamp_seconds';
    // What a reconcile of the earlier, valid spec left, and another server's series, which stays.
    metrics.certificates.set('media', 'edge', 'edge-tls', new Date('2027-01-01T00:00:00Z'));
    metrics.certificates.set('media', 'other', 'other-tls', new Date('2027-02-01T00:00:00Z'));

    await standInReconciler({ certificates: metrics.certificates }).reconciler.reconcile('media', 'edge');
    const values = (await metrics.registry.getSingleMetric(series)!.get()).values;
    expect(values.map((v) => v.labels)).toEqual([{ namespace: 'media', rtmpserver: 'other', secret: 'other-tls' }]);
  });
});

describe('the Events of an apply', () => {
  const server = {
    apiVersion: 'media.fluxiot.io/v1alpha1',
    kind: 'RtmpServer',
    metadata: { name: 'edge', namespace: 'media', uid: 'u', generation: 1, resourceVersion: '1' },
    spec: { replicas: 1 },
  };

  it('reports a child stripped of its labels as updated when it is put back, even in the second the child was made', async () => {
    // Out of the label-selected cache, still on the API server, made in the very second of the apply that puts it back.
    const stripped = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'edge', namespace: 'media', resourceVersion: '41', creationTimestamp: new Date('2026-11-30T14:00:00Z') },
    };
    const { reconciler, events } = standInReconciler({ server, uncached: [stripped] });
    await reconciler.reconcile('media', 'edge');
    expect(events).toContain('Normal Updated: updated Service edge');
    expect(events).not.toContain('Normal Created: created Service edge');
    // the children the API server does not hold are made
    expect(events).toContain('Normal Created: created Service edge-pods');
  });
});

// Stand-ins again: each StatefulSet status below is the StatefulSet controller's to write, and on a real
// API server most of them last only a moment; here each is given at once.
describe('the requeue', () => {
  const server = (spec: object) => ({
    apiVersion: 'media.fluxiot.io/v1alpha1',
    kind: 'RtmpServer',
    metadata: { name: 'edge', namespace: 'media', uid: 'u', generation: 1, resourceVersion: '1' },
    spec,
  });
  /** The StatefulSet controller saw the template and finished: 2 pods of the current revision, all ready. */
  const rolledOut = {
    observedGeneration: 1,
    replicas: 2,
    readyReplicas: 2,
    updatedReplicas: 2,
    currentRevision: 'r1',
    updateRevision: 'r1',
  };
  const keys = { auth: { rules: [{ app: 'live', method: 'keys', keysSecret: { name: 'keys' } }] } };

  // Every state the conditions tell apart: the reconcile looks again exactly while Reconciling or Stalled says something is still to happen.
  it.each([
    ['every pod ready', { replicas: 2 }, rolledOut, 'Ready=True Reconciling=False Stalled=False'],
    [
      'scaled to zero',
      { replicas: 0 },
      { ...rolledOut, replicas: 0, readyReplicas: 0, updatedReplicas: 0 },
      'Ready=False Reconciling=False Stalled=False',
    ],
    ['pods starting', { replicas: 2 }, { ...rolledOut, readyReplicas: 1 }, 'Ready=False Reconciling=True Stalled=False'],
    [
      'the last pods being replaced, all ready',
      { replicas: 2 },
      { ...rolledOut, updateRevision: 'r2' },
      'Ready=False Reconciling=True Stalled=False',
    ],
    [
      'a template the StatefulSet controller has not seen',
      { replicas: 2 },
      { ...rolledOut, observedGeneration: 0 },
      'Ready=False Reconciling=True Stalled=False',
    ],
    [
      'scaling down, all ready',
      { replicas: 2 },
      { ...rolledOut, replicas: 3, readyReplicas: 3 },
      'Ready=False Reconciling=True Stalled=False',
    ],
    ['a missing Secret under ready pods', { replicas: 2, ...keys }, rolledOut, 'Ready=True Reconciling=False Stalled=True'],
  ])('follows the status it wrote: %s', async (_, spec, statefulSet, expected) => {
    const { reconciler, written } = standInReconciler({ server: server(spec), statefulSet });
    const result = await reconciler.reconcile('media', 'edge');
    const status = Object.fromEntries((written[0]?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(`Ready=${status.Ready} Reconciling=${status.Reconciling} Stalled=${status.Stalled}`).toBe(expected);
    const pending = status.Reconciling === 'True' || status.Stalled === 'True';
    expect(result).toEqual(pending ? { requeueAfterMs: 30_000 } : {});
  });
});
