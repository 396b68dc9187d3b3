import type { CustomObjectsApi, KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { RtmpServerStatus } from '../api/rtmpserver.ts';
import type { EventRecorder } from './events.ts';
import { createMetrics, type CertificateMetrics } from './metrics.ts';
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

function reconcilerOfStoredSpec(certificates: CertificateMetrics = { set() {}, remove() {} }) {
  const written: RtmpServerStatus[] = [];
  const events: string[] = [];
  const reconciler = new Reconciler({
    objects: {} as KubernetesObjectApi,
    customObjects: {
      patchNamespacedCustomObjectStatus: async ({ body }: { body: { status: RtmpServerStatus } }) => written.push(body.status),
    } as unknown as CustomObjectsApi,
    events: {
      event: async (_o: KubernetesObject, type: string, reason: string) => void events.push(`${type} ${reason}`),
    } as EventRecorder,
    readSecret: async () => undefined,
    secretVersion: () => undefined,
    secretVerdicts: new SecretVerdicts(() => true),
    certificates,
    defaults: {} as never,
    log: pino({ level: 'silent' }),
    getServer: () => stored,
    getOwned: () => undefined,
    listOwned: () => [],
    listFleetLeases: () => [],
    listEvents: async () => [],
    now: () => new Date('2026-11-30T14:00:00Z'),
  });
  return { reconciler, written, events };
}

describe('Reconciler', () => {
  it('reports a stored spec it cannot parse as Stalled and not Ready for that generation, without applying anything', async () => {
    const { reconciler, written, events } = reconcilerOfStoredSpec();

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
    expect(events).toEqual(['Warning InvalidSpec']);

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

    await reconcilerOfStoredSpec(metrics.certificates).reconciler.reconcile('media', 'edge');
    const values = (await metrics.registry.getSingleMetric(series)!.get()).values;
    expect(values.map((v) => v.labels)).toEqual([{ namespace: 'media', rtmpserver: 'other', secret: 'other-tls' }]);
  });
});
