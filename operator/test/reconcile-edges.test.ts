// Edges of one reconcile that the other operator tests do not reach: a child
// of the same name the server does not own, Events of a past problem once
// every pod is ready, and a cause that clears without any watched object
// changing (only the 30 s requeue notices it).
import { describe, expect, it } from 'vitest';
import { kubectl } from '../../e2e/cluster/kube.ts';
import {
  apply,
  boundVolume,
  condition,
  eventsOf,
  get,
  manualStorage,
  operatorSuite,
  rtmpServer,
  storageClass,
  waitCondition,
  waitReady,
} from './harness.ts';

const { ns } = operatorSuite('rtmp-edges', { restricted: true });

const storage = manualStorage;
/** Refused by the namespace's restricted Pod Security level: the StatefulSet creates no pod. */
const privileged = { privileged: true, allowPrivilegeEscalation: true };
const bindVolumes = (name: string) => apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-${name}-0`)));

describe('reconcile edges on the real API server', () => {
  it('leaves a PodDisruptionBudget of its name and labels alone when the server does not own it', async () => {
    // e.g. one the user made by copying ours; the cache holds it (it carries our labels)
    await apply({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: {
        name: 'foreign',
        namespace: ns,
        labels: { 'app.kubernetes.io/managed-by': 'rtmpd-operator', 'app.kubernetes.io/instance': 'foreign' },
      },
      spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'someone-else' } } },
    });
    await bindVolumes('foreign');
    await apply(rtmpServer(ns, 'foreign', { storage, podDisruptionBudget: { enabled: false } }));
    await waitReady(ns, 'foreign');
    expect(await get('poddisruptionbudget', ns, 'foreign')).toBeDefined();
    expect(await eventsOf(ns, 'foreign', 'Deleted')).toEqual([]);
  });

  it('is Ready once every pod is, although the StatefulSet’s refusals are still recent Events', async () => {
    await bindVolumes('recovered');
    await apply(rtmpServer(ns, 'recovered', { storage, securityContext: privileged }));
    await waitCondition(ns, 'recovered', 'Stalled', 'True', 'PodCreationFailed');
    await kubectl(['patch', 'rtmpserver', 'recovered', '-n', ns, '--type=json', '-p', '[{"op":"remove","path":"/spec/securityContext"}]']);
    // the FailedCreate Warnings stay recent for minutes: they must not be read while all pods are ready
    const ready = await waitReady(ns, 'recovered', 60_000);
    expect(condition(ready, 'Stalled')?.status).toBe('False');
  });

  it('drops a cause that clears without a watched change, by its requeue', async () => {
    await apply(
      rtmpServer(ns, 'requeued', { storage: { ...storage, recordings: { existingClaim: 'later' } }, securityContext: privileged }),
    );
    await waitCondition(ns, 'requeued', 'Stalled', 'True', 'ClaimNotFound');
    // A claim of the user's (not labelled, so not watched); the pod is still refused, so no pod changes either.
    await apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'later', namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: storageClass, resources: { requests: { storage: '1Gi' } } },
    });
    // within one 30 s requeue (and the time of a reconcile), long before the 10-minute resync
    const o = await waitCondition(ns, 'requeued', 'Stalled', 'True', 'PodCreationFailed', 45_000);
    expect(condition(o, 'Stalled')?.message).not.toContain('existing claim later');
  });
});
