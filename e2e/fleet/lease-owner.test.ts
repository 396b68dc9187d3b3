// A pod's Leases go with its Pod: rtmpd names the Pod (its UID from the
// downward API) as the owner of its pod Lease and of its streams' claims, and
// the local control plane's garbage collector (kube-controller-manager)
// deletes them once the Pod is gone, also when rtmpd was killed and could not
// delete them itself.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { claimName } from '../../rtmpd/src/fleet/records.ts';
import { RtmpClient } from '../../rtmpd/test/support/rtmp-client.ts';
import { eventually, kubectl, kubectlJson } from '../cluster/kube.ts';
import { freePort } from '../lib/free-port.ts';
import { fleetPodAccount, startFleetPod, type FleetPod } from './pods.ts';

const namespace = `lease-owner-${randomBytes(3).toString('hex')}`;
const fleet = 'edge';
const podName = 'edge-0';
const leaseName = `rtmpd-pod.${podName}`;
const claim = claimName(fleet, 'rtmp/live/cam');

let dir: string;
let rtmpd: FleetPod | undefined;

interface Owned {
  metadata: { uid: string; ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[] };
}

const lease = (name = leaseName): Promise<Owned | undefined> =>
  kubectlJson<Owned>(['get', 'lease', name, '-n', namespace]).catch((err: unknown) => {
    if (String(err).includes('NotFound')) return undefined;
    throw err;
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flux-rtmpd-lease-owner-'));
  await kubectl(['create', 'namespace', namespace]);
});

afterAll(async () => {
  await rtmpd?.kill();
  await kubectl(['delete', 'namespace', namespace, '--wait=false'], { allowFailure: true });
  await rm(dir, { recursive: true, force: true });
});

it('a killed pod’s Lease and stream claims name its Pod as owner and are deleted with the Pod by the garbage collector', async () => {
  const kubeconfig = await fleetPodAccount(namespace, 'edge-rtmpd');
  // The Pod object (kwok runs it on a fake node); rtmpd runs here, told the Pod's UID as the operator's template tells it.
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, namespace },
    spec: { containers: [{ name: 'rtmpd', image: 'rtmpd:test' }] },
  };
  const created = await kubectlJson<Owned>(['create', '-f', '-'], { input: JSON.stringify(pod) });
  rtmpd = await startFleetPod({
    fleet,
    namespace,
    pod: podName,
    ip: '127.0.0.6',
    rtmpPort: await freePort(),
    httpPort: await freePort(),
    token: randomBytes(16).toString('hex'),
    kubeconfig,
    dir,
    extraArgs: [`--fleet-pod-uid=${created.metadata.uid}`],
  });
  const owner = [{ apiVersion: 'v1', kind: 'Pod', name: podName, uid: created.metadata.uid }];
  const held = await eventually('the pod Lease', () => lease());
  expect(held.metadata.ownerReferences).toEqual(owner);
  // A live stream: its publish is admitted once the claim is created.
  const publisher = await RtmpClient.connect(rtmpd.rtmpUrl('live', 'cam'));
  await publisher.publish();
  expect((await lease(claim))?.metadata.ownerReferences).toEqual(owner);

  // Killed: no clean stop deletes the Leases, and the garbage collector keeps them while their Pod lives.
  await rtmpd.kill();
  publisher.destroy();
  expect(await lease()).toBeDefined();
  expect(await lease(claim)).toBeDefined();
  await kubectl(['delete', 'pod', podName, '-n', namespace, '--grace-period=0', '--force']);
  const gone = async () => ((await lease()) === undefined && (await lease(claim)) === undefined ? true : undefined);
  await eventually('the garbage collector to delete the Leases', gone, 60_000);
});
