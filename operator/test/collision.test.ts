// Two RtmpServers whose children's names collide ("edge"'s headless Service is
// "edge-pods", the name of "edge-pods"'s Service): the second is Stalled while
// the first holds the name, and takes it as soon as the first's Service is
// gone, not when its backoff ends (which grows to minutes while it fails).
import { describe, expect, it } from 'vitest';
import { eventually, kubectl } from '../../e2e/cluster/kube.ts';
import { apply, condition, get, operatorSuite, rtmpServer, waitCondition } from './harness.ts';

const { ns } = operatorSuite('rtmp-collide');

describe('a name collision', () => {
  it("is over within seconds of the owner's deletion, however long the loser's backoff", async () => {
    await apply(rtmpServer(ns, 'edge', { replicas: 0 }));
    await waitCondition(ns, 'edge', 'Ready', 'False', 'ScaledToZero');
    await apply(rtmpServer(ns, 'edge-pods', { replicas: 0 }));
    await waitCondition(ns, 'edge-pods', 'Stalled', 'True', 'ApplyFailed');
    // Each change of the loser is a reconcile that fails again: its backoff (5 ms·2^failures) passes minutes.
    for (let i = 0; i < 16; i++)
      await kubectl(['annotate', 'rtmpserver', 'edge-pods', '-n', ns, `e2e.flux-rtmpd/touch=${i}`, '--overwrite']);
    // Let the shorter retries pending from before run out.
    await new Promise((r) => setTimeout(r, 3000));
    expect(condition(await get('rtmpserver', ns, 'edge-pods'), 'Stalled')?.reason).toBe('ApplyFailed');

    await kubectl(['delete', 'rtmpserver', 'edge', '-n', ns, '--wait=false']);
    const taken = await eventually(
      'edge-pods owning its Service',
      async () => {
        const service = await get('service', ns, 'edge-pods');
        return service?.metadata.ownerReferences?.[0]?.name === 'edge-pods' ? service : undefined;
      },
      15_000,
    );
    expect(taken.spec.clusterIP).not.toBe('None');
    await waitCondition(ns, 'edge-pods', 'Stalled', 'False', 'NoProblems', 15_000);
    await kubectl(['delete', 'rtmpserver', 'edge-pods', '-n', ns, '--wait=false']);
  });
});
