// Day two on the real API server: what a platform engineer does to a running
// RtmpServer after the first apply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from '../../e2e/cluster/kube.ts';
import { apply, condition, get, installCrd, rtmpServer, startOperators, suffix, waitCondition, type OperatorFixture } from './harness.ts';

const id = suffix();
const ns = `rtmp-day2-${id}`;
let fixture: OperatorFixture;

beforeAll(async () => {
  await installCrd();
  await kubectl(['create', 'namespace', ns]);
  fixture = await startOperators({ id, watched: [ns] });
}, 120_000);

afterAll(() => fixture?.teardown(), 60_000);

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
});
