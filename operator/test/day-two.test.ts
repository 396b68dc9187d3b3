// Day two on the real API server: what a platform engineer does to a running
// RtmpServer after the first apply: a claim that cannot grow, and two
// RtmpServers whose children's names collide.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from '../../e2e/cluster/kube.ts';
import {
  apply,
  boundVolume,
  condition,
  get,
  installCrd,
  rtmpServer,
  startOperators,
  suffix,
  waitCondition,
  waitReady,
  type OperatorFixture,
} from './harness.ts';

const id = suffix();
const ns = `rtmp-day2-${id}`;
let fixture: OperatorFixture;

beforeAll(async () => {
  await installCrd();
  await kubectl(['create', 'namespace', ns]);
  fixture = await startOperators({ id, watched: [ns] });
}, 120_000);

afterAll(() => fixture?.teardown(), 60_000);

const merge = (name: string, patch: object) =>
  kubectl(['patch', 'rtmpserver', name, '-n', ns, '--type=merge', '-p', JSON.stringify(patch)]);

describe('day two', () => {
  it('two RtmpServers whose children would share a name: the second is Stalled naming the owner, the first keeps its Service', async () => {
    // "edge"'s headless Service is "edge-pods", the name of "edge-pods"'s client Service.
    await apply(rtmpServer(ns, 'edge', { replicas: 0 }));
    const edge = await waitCondition(ns, 'edge', 'Ready', 'False', 'ScaledToZero');
    const headless = (await get('service', ns, 'edge-pods'))!;
    await apply(rtmpServer(ns, 'edge-pods', { replicas: 0 }));
    const o = await waitCondition(ns, 'edge-pods', 'Stalled', 'True', 'ApplyFailed');
    expect(condition(o, 'Stalled')?.message).toBe(
      `Service edge-pods: it belongs to RtmpServer edge (uid ${edge.metadata.uid}); rename one of the two`,
    );
    // Not taken over, not even for a moment: the same object, still edge's, still headless.
    await new Promise((r) => setTimeout(r, 3000));
    const after = (await get('service', ns, 'edge-pods'))!;
    expect(after.metadata.uid).toBe(headless.metadata.uid);
    expect(after.metadata.ownerReferences?.map((r) => r.name)).toEqual(['edge']);
    expect(after.spec.clusterIP).toBe('None');
    expect(after.metadata.managedFields).toEqual(headless.metadata.managedFields);
    // The other children of edge-pods are made: only the one name is in conflict.
    expect(await get('statefulset', ns, 'edge-pods')).toBeDefined();
    await kubectl(['delete', 'rtmpserver', 'edge', 'edge-pods', '-n', ns, '--wait=false']);
  });

  it('a claim that cannot grow: Stalled (ClaimNotExpandable) naming its StorageClass, not an error retried with backoff; Ready once the size is put back', async () => {
    const fixed = `e2e-fixed-${id}`;
    await apply({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: fixed }, provisioner: 'example.com/none' });
    try {
      await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-fixed-0`, ['ReadWriteOnce'], fixed)));
      await apply(
        rtmpServer(ns, 'fixed', { storage: { recordings: { storageClassName: fixed }, keyframes: { storageClassName: fixed } } }),
      );
      await waitReady(ns, 'fixed');
      await merge('fixed', { spec: { storage: { recordings: { size: '20Gi' } } } });
      const o = await waitCondition(ns, 'fixed', 'Stalled', 'True', 'ClaimNotExpandable');
      expect(condition(o, 'Stalled')?.message).toBe(
        `claim recordings-fixed-0 cannot grow to 20Gi: its StorageClass ${fixed} does not allow volume expansion (allowVolumeExpansion); it stays at 10Gi`,
      );
      expect(condition(o, 'Ready')).toMatchObject({ status: 'False', reason: 'ClaimNotExpandable' });
      await merge('fixed', { spec: { storage: { recordings: { size: '10Gi' } } } });
      await waitReady(ns, 'fixed');
    } finally {
      await kubectl(['delete', 'storageclass', fixed, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    }
  });
});
