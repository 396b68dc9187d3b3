// Day two on the real API server: what a platform engineer does to a running
// RtmpServer after the first apply. Objects a previous operator version
// applied, scaling to zero and back, ports changed and removed, the liveness
// probe moved off its thread's port and back, a claim that cannot grow, and
// two RtmpServers whose children's names collide.
import { describe, expect, it } from 'vitest';
import { eventually, kubectl, kubectlJson } from '../../e2e/cluster/kube.ts';
import { apply, boundVolume, condition, get, manualStorage, operatorSuite, rtmpServer, waitCondition, waitReady } from './harness.ts';

const { id, ns } = operatorSuite('rtmp-day2');

const storage = manualStorage;
const volumesFor = (name: string, ordinals = [0]) =>
  apply(ordinals.flatMap((i) => ['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-${name}-${i}`))));
const merge = (name: string, patch: object) =>
  kubectl(['patch', 'rtmpserver', name, '-n', ns, '--type=merge', '-p', JSON.stringify(patch)]);
const servicePorts = async (name: string) =>
  ((await get('service', ns, name))?.spec.ports as { name: string; port: number; nodePort?: number }[]).map((p) => `${p.name}:${p.port}`);

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

  it('converges from what a previous version applied under the same field manager: its extra fields go, once', async () => {
    await volumesFor('upgraded');
    await apply(rtmpServer(ns, 'upgraded', { storage }));
    await waitReady(ns, 'upgraded');
    const current = (await get('service', ns, 'upgraded'))!;
    // A previous version's apply: the same Service with an annotation and a port this version does not make.
    const previous = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'upgraded', namespace: ns, annotations: { 'media.fluxiot.io/previous': 'yes' } },
      spec: { ...current.spec, ports: [...current.spec.ports, { name: 'legacy', port: 1999, targetPort: 1999, protocol: 'TCP' }] },
    };
    await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=rtmpd-operator', '-f', '-'], {
      input: JSON.stringify(previous),
    });
    const converged = await eventually('the previous version’s fields gone', async () => {
      const s = await get('service', ns, 'upgraded');
      return !s?.metadata.annotations?.['media.fluxiot.io/previous'] && !(await servicePorts('upgraded')).includes('legacy:1999')
        ? s
        : undefined;
    });
    // and no fight: nothing changes it again
    await new Promise((r) => setTimeout(r, 3000));
    expect((await get('service', ns, 'upgraded'))?.metadata.managedFields).toEqual(converged.metadata.managedFields);
    expect(await servicePorts('upgraded')).toEqual(['rtmp:1935', 'http:8082']);
  });

  it('scales to zero and back: ScaledToZero, not Ready, nothing stalled; then Ready with the same claims', async () => {
    const claims = async () =>
      Object.fromEntries(
        await Promise.all(['recordings', 'keyframes'].map(async (v) => [v, (await get('pvc', ns, `${v}-upgraded-0`))?.metadata.uid])),
      );
    const before = await claims();
    await kubectl(['scale', 'rtmpserver', 'upgraded', '-n', ns, '--replicas=0']);
    const zero = await waitCondition(ns, 'upgraded', 'Ready', 'False', 'ScaledToZero');
    expect(zero.status).toMatchObject({ replicas: 0, readyReplicas: 0 });
    expect(condition(zero, 'Stalled')?.status).toBe('False');
    expect(condition(zero, 'Reconciling')?.status).toBe('False');
    expect(await claims()).toEqual(before);
    await kubectl(['scale', 'rtmpserver', 'upgraded', '-n', ns, '--replicas=1']);
    const back = await waitReady(ns, 'upgraded');
    expect(back.status).toMatchObject({ replicas: 1, readyReplicas: 1 });
    expect(await claims()).toEqual(before);
  });

  it('moves and removes ports: the old ones leave the Services and the pods, and a NodePort Service becomes ClusterIP', async () => {
    const tls = `tls-${id}`;
    await kubectl(['create', 'secret', 'generic', tls, '-n', ns, '--from-literal=tls.crt=pem', '--from-literal=tls.key=pem']);
    await merge('upgraded', { spec: { service: { type: 'NodePort' }, tls: { secretName: tls, rtmpsPort: 1936 } } });
    await eventually('rtmps on the Service', async () => ((await servicePorts('upgraded')).includes('rtmps:1936') ? true : undefined));
    await merge('upgraded', { spec: { service: { type: 'ClusterIP' }, tls: null, ports: { rtmp: 1940 } } });
    const service = await eventually('the Service with the new ports only', async () => {
      const s = await get('service', ns, 'upgraded');
      return s?.spec.type === 'ClusterIP' && (await servicePorts('upgraded')).join() === 'rtmp:1940,http:8082' ? s : undefined;
    });
    expect(service.spec.ports.every((p: { nodePort?: number }) => p.nodePort === undefined)).toBe(true);
    expect(await servicePorts('upgraded-pods')).toEqual(['rtmp:1940', 'http:8082']);
    const sts = (await get('statefulset', ns, 'upgraded'))!;
    expect(
      sts.spec.template.spec.containers[0].ports.map((p: { name: string; containerPort: number }) => `${p.name}:${p.containerPort}`),
    ).toEqual(['rtmp:1940', 'http:8082', 'health:8081']); // the Services' ports, and the liveness probe's
    await waitReady(ns, 'upgraded');
  });

  it('moves the liveness probe to the HTTP port and back: the health port and --health-bind leave the pods, then return', async () => {
    const rtmpd = async () => (await get('statefulset', ns, 'upgraded'))!.spec.template.spec.containers[0];
    const podPorts = async () => (await rtmpd()).ports.map((p: { name: string; containerPort: number }) => `${p.name}:${p.containerPort}`);
    await merge('upgraded', { spec: { probes: { liveness: { port: 'http' } } } });
    await eventually('the pods without the health port', async () =>
      (await podPorts()).join() === 'rtmp:1940,http:8082' ? true : undefined,
    );
    const c = await rtmpd();
    expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http', scheme: 'HTTP' });
    expect(c.args.filter((a: string) => a.startsWith('--health-bind'))).toEqual([]);
    await merge('upgraded', { spec: { probes: null } });
    await eventually('the health port back', async () =>
      (await podPorts()).join() === 'rtmp:1940,http:8082,health:8081' ? true : undefined,
    );
    expect((await rtmpd()).args).toContain('--health-bind=0.0.0.0:8081');
    await waitReady(ns, 'upgraded');
  });

  it('deleted, leaves nothing of its making but the claims it was told to retain', async () => {
    await kubectl(['delete', 'rtmpserver', 'upgraded', '-n', ns, '--wait=true', '--timeout=60s']);
    const kinds =
      'statefulsets,services,configmaps,secrets,serviceaccounts,roles,rolebindings,poddisruptionbudgets,horizontalpodautoscalers,jobs,pods,leases,persistentvolumeclaims';
    const left = await eventually(
      'only the retained claims left',
      async () => {
        const items = (
          await kubectlJson<{ items: { kind: string; metadata: { name: string; deletionTimestamp?: string } }[] }>([
            'get',
            kinds,
            '-n',
            ns,
            '-l',
            'app.kubernetes.io/instance=upgraded',
          ])
        ).items.filter((o) => !o.metadata.deletionTimestamp);
        return items.every((o) => o.kind === 'PersistentVolumeClaim') ? items : undefined;
      },
      60_000,
    );
    expect(left.map((o) => o.metadata.name).sort()).toEqual(['keyframes-upgraded-0', 'recordings-upgraded-0']);
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
