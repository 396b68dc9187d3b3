// The status says at once why pods do not come up, with the API server's own
// words, and is never Stalled and Reconciling at the same time (kstatus). The
// operator's fallback requeue is an hour here: every cause must reach the
// status through a watch (the pods', the claims', their Events).
import { describe, expect, it } from 'vitest';
import { eventually, kubectl } from '../../e2e/cluster/kube.ts';
import { maxEventMessage } from '../src/controller/causes.ts';
import {
  apply,
  boundVolume,
  condition,
  get,
  manualStorage,
  operatorSuite,
  rtmpServer,
  storageClass,
  waitCondition,
  waitReady,
  type Kube,
} from './harness.ts';
import { warningEvent } from './warning-event.ts';

const { id, ns } = operatorSuite('rtmp-status', { restricted: true, args: ['--requeue-seconds=3600'] });

const storage = manualStorage;

/** Stalled with that reason, within `withinMs` of the apply (no ten-minute progress deadline first). */
async function stalledSoon(name: string, spec: object, reason: string, withinMs = 30_000): Promise<Kube> {
  const started = Date.now();
  await apply(rtmpServer(ns, name, spec));
  const o = await waitCondition(ns, name, 'Stalled', 'True', reason, withinMs);
  expect(Date.now() - started).toBeLessThan(withinMs);
  // never both: kstatus reads Stalled=True with Reconciling=True as contradictory
  expect(condition(o, 'Reconciling')?.status).toBe('False');
  expect(condition(o, 'Ready')).toMatchObject({ status: 'False', reason });
  return o;
}

describe('causes surfaced in the status', () => {
  it('a missing existingClaim', async () => {
    const o = await stalledSoon('missing', { storage: { recordings: { existingClaim: 'nowhere' } } }, 'ClaimNotFound');
    expect(condition(o, 'Stalled')?.message).toContain('storage names the existing claim nowhere, which does not exist in this namespace');
  });

  it('a pod refused by admission (Pod Security), with the refusal', async () => {
    await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-privileged-0`)));
    const o = await stalledSoon(
      'privileged',
      { storage, securityContext: { privileged: true, allowPrivilegeEscalation: true } },
      'PodCreationFailed',
    );
    expect(condition(o, 'Stalled')?.message).toMatch(/the StatefulSet cannot create pods: .*violates PodSecurity "restricted:latest"/);
  });

  it('a FailedCreate recorded after the last change of every other object: the Event alone moves the status', async () => {
    await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-quiet-0`)));
    await stalledSoon('quiet', { storage, nodeSelector: { pool: 'nowhere' } }, 'PodUnschedulable');
    // the scheduler's full message: from now on no pod, claim or StatefulSet of this server changes
    await eventually('the scheduler’s reason', async () =>
      /0\/\d+ nodes are available/.test(condition(await get('rtmpserver', ns, 'quiet'), 'Stalled')?.message ?? '') ? true : undefined,
    );
    // A quota refusal as the StatefulSet controller records it (a stand-in, like the kubelet's below: a real
    // one comes with a change of the StatefulSet's status that a reconcile may see first, or not).
    const sts = await get('statefulset', ns, 'quiet');
    const refusal =
      'create Pod quiet-0 in StatefulSet quiet failed error: pods "quiet-0" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1';
    await apply(
      warningEvent({
        namespace: ns,
        name: `quiet.${id}`,
        about: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'quiet', uid: sts?.metadata.uid },
        reason: 'FailedCreate',
        message: refusal,
        component: 'statefulset-controller',
      }),
    );
    const o = await waitCondition(ns, 'quiet', 'Stalled', 'True', 'PodCreationFailed');
    expect(condition(o, 'Stalled')?.message).toContain(`the StatefulSet cannot create pods: ${refusal}`);
  });

  it('a FailedCreate of 100 KiB: the cause quotes its first KiB', async () => {
    await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-verbose-0`)));
    await stalledSoon('verbose', { storage, nodeSelector: { pool: 'nowhere' } }, 'PodUnschedulable');
    const refusal = `create Pod verbose-0 in StatefulSet verbose failed error: ${'refused; '.repeat(10 * 1024)}`;
    await apply(
      warningEvent({
        namespace: ns,
        name: `verbose.${id}`,
        about: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'verbose' },
        reason: 'FailedCreate',
        message: refusal,
        component: 'statefulset-controller',
      }),
    );
    const o = await waitCondition(ns, 'verbose', 'Stalled', 'True', 'PodCreationFailed');
    const message = condition(o, 'Stalled')?.message ?? '';
    expect(message).toContain(`the StatefulSet cannot create pods: ${refusal.slice(0, maxEventMessage)}…`);
    expect(message).not.toContain(refusal.slice(0, maxEventMessage + 1));
  });

  it('a pod that cannot be scheduled, with the scheduler’s message; and its recovery', async () => {
    await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-nowhere-0`)));
    await stalledSoon('nowhere', { storage, nodeSelector: { pool: 'nowhere' } }, 'PodUnschedulable');
    // the scheduler names the reason once it has tried every node
    await eventually('the scheduler’s reason', async () => {
      const message = condition(await get('rtmpserver', ns, 'nowhere'), 'Stalled')?.message ?? '';
      return /pod nowhere-0 cannot be scheduled: 0\/\d+ nodes are available: .*didn't match Pod's node affinity\/selector/.test(message)
        ? true
        : undefined;
    });
    await kubectl(['patch', 'rtmpserver', 'nowhere', '-n', ns, '--type=json', '-p', '[{"op":"remove","path":"/spec/nodeSelector"}]']);
    const ready = await waitReady(ns, 'nowhere');
    expect(condition(ready, 'Stalled')?.status).toBe('False');
  });

  it('a crash loop, with the container’s last words, Stalled also while the kubelet tries it again', async () => {
    // kwok runs no container: the pod's status is written here as a kubelet writes it (a stand-in for the kubelet).
    await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-crashing-0`)));
    await apply(rtmpServer(ns, 'crashing', { storage }));
    await waitReady(ns, 'crashing');
    const sts = await get('statefulset', ns, 'crashing');
    expect(sts?.spec.template.spec.containers[0].terminationMessagePolicy).toBe('FallbackToLogsOnError');
    const fatal = "rtmpd: Unknown option '--bogus-flag' (see --help)";
    const crashed = (restartCount: number, state: object) => {
      const at = new Date().toISOString();
      const status = {
        phase: 'Running',
        conditions: [
          { type: 'Ready', status: 'False', lastTransitionTime: at },
          { type: 'ContainersReady', status: 'False', lastTransitionTime: at },
        ],
        containerStatuses: [
          {
            name: 'rtmpd',
            image: sts?.spec.template.spec.containers[0].image,
            imageID: '',
            ready: false,
            restartCount,
            state,
            lastState: { terminated: { exitCode: 2, reason: 'Error', message: `${fatal}\n`, startedAt: at, finishedAt: at } },
          },
        ],
      };
      return kubectl(['patch', 'pod', 'crashing-0', '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    };
    const says = (restarts: number) =>
      `pod crashing-0, container rtmpd: CrashLoopBackOff: restarted ${restarts} times, last exit code 2 (Error): ${fatal}`;
    const stalledSaying = (restarts: number) =>
      eventually(`Stalled, restarted ${restarts} times`, async () => {
        const o = await get('rtmpserver', ns, 'crashing');
        return condition(o, 'Stalled')?.message === says(restarts) ? o : undefined;
      });

    await crashed(3, { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=rtmpd' } });
    const backingOff = await stalledSaying(3);
    expect(condition(backingOff, 'Stalled')).toMatchObject({ status: 'True', reason: 'CrashLoopBackOff' });
    // between two back-offs the container runs again, not ready yet: still Stalled, not Reconciling (PodsStarting)
    await crashed(4, { running: { startedAt: new Date().toISOString() } });
    const retrying = await stalledSaying(4);
    expect(condition(retrying, 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'CrashLoopBackOff',
      lastTransitionTime: condition(backingOff, 'Stalled')?.lastTransitionTime,
    });
    expect(condition(retrying, 'Reconciling')?.status).toBe('False');
    await kubectl(['delete', 'rtmpserver', 'crashing', '-n', ns, '--wait=false']);
  });

  it('a claim that does not bind, with its Warning', async () => {
    const o = await stalledSoon('unbound', { storage: { recordings: { storageClassName: `no-such-class-${id}` } } }, 'PodUnschedulable');
    const message = condition(o, 'Stalled')?.message ?? '';
    expect(message).toMatch(/unbound immediate PersistentVolumeClaims/);
    expect(message).toMatch(new RegExp(`claim recordings-unbound-0 is Pending: ProvisioningFailed: .*no-such-class-${id}.* not found`));
  });

  it('a claim with no StorageClass, in a cluster without a default one (this one has none)', async () => {
    await apply(rtmpServer(ns, 'classless', {}));
    await eventually('the claim’s reason in the Stalled message', async () => {
      const message = condition(await get('rtmpserver', ns, 'classless'), 'Stalled')?.message ?? '';
      return message.includes(
        'claim recordings-classless-0 is Pending: FailedBinding: no persistent volumes available for this claim and no storage class is set',
      )
        ? true
        : undefined;
    });
  });

  it('the scheduler’s words for 180 pods, bounded to what the API server takes, with a count of the pods left out', async () => {
    // 180 messages of ~190 characters pass the API server's 32768 limit of a condition message.
    await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `crowd-${v}`, ['ReadWriteMany'])));
    const rwx = { storageClassName: storageClass, accessModes: ['ReadWriteMany'] };
    await apply(
      rtmpServer(ns, 'crowd', { replicas: 180, storage: { recordings: rwx, keyframes: rwx }, nodeSelector: { pool: 'nowhere' } }),
    );
    const o = await eventually(
      'a Stalled message naming some pods and counting the rest',
      async () => {
        const c = await get('rtmpserver', ns, 'crowd');
        const message = condition(c, 'Stalled')?.message ?? '';
        return c?.status?.observedGeneration === c?.metadata.generation && /; and \d+ more$/.test(message) ? c : undefined;
      },
      90_000,
    );
    const message = condition(o, 'Stalled')!.message;
    expect(message).toMatch(/^pod crowd-\d+ cannot be scheduled: /);
    expect(message.length).toBeLessThanOrEqual(8192);
    expect(condition(o, 'Ready')).toMatchObject({ status: 'False', reason: 'PodUnschedulable' });
    await kubectl(['delete', 'rtmpserver', 'crowd', '-n', ns, '--wait=false']);
  }, 150_000);
});
