// The operator against the real API server (e2e/cluster: kube-apiserver,
// controller-manager, scheduler, kwok nodes), running as a child process under
// its own ServiceAccount with the generated RBAC. Two replicas run with leader
// election throughout; the tests run in order and share them.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimLease, podLease } from '@flux-rtmpd/rtmpd/fleet-records';
import { eventually, kubectl, kubectlJson, serviceAccountKubeconfig, waitEstablished, withClusterLock } from '../../e2e/cluster/kube.ts';
import { selfSigned } from '../../rtmpd/test/support/certificates.ts';
import { checksumAnnotation } from '../src/controller/pod.ts';
import {
  apply,
  boundVolume,
  condition,
  eventsOf,
  get,
  installCrd,
  list,
  restrictedNamespace,
  rtmpServer,
  startOperator,
  startOperators,
  storageClass,
  suffix,
  waitCondition,
  waitReady as waitReadyIn,
  type Event,
  type Kube,
  type OperatorFixture,
  type OperatorProcess,
} from './harness.ts';

const waitReady = (name: string) => waitReadyIn(ns, name);

const id = suffix();
const ns = `rtmp-e2e-${id}`;
const system = `rtmp-op-${id}`;
const lease = `rtmpd-operator-e2e-${id}`;
let fixture: OperatorFixture;
let operators: OperatorProcess[];

const server = (name: string, spec: object) => rtmpServer(ns, name, spec);
const monitoringCrds = new URL('../../e2e/chart/testdata/monitoring-crds.yaml', import.meta.url).pathname;
const rwx = {
  storage: {
    reclaimPolicy: 'Delete',
    recordings: { storageClassName: storageClass, accessModes: ['ReadWriteMany'] },
    keyframes: { storageClassName: storageClass, accessModes: ['ReadWriteMany'] },
  },
};
const ownedBy = (o: Kube | undefined, owner: Kube) =>
  o?.metadata.ownerReferences?.find((r) => r.kind === 'RtmpServer' && r.uid === owner.metadata.uid && r.controller);
const leaseHolder = async () => (await get('lease', system, lease))?.spec?.holderIdentity as string | undefined;
const leader = async () => {
  const holder = await leaseHolder();
  return operators.find((o) => o.identity === holder && o.child.exitCode === null);
};
const eventOf = async (name: string, reason: string): Promise<Event | undefined> => (await eventsOf(ns, name, reason))[0];
const podUids = async (name: string) =>
  (await list('pods', ns, `app.kubernetes.io/instance=${name}`)).filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.uid);

beforeAll(async () => {
  await installCrd();
  // Every pod the tests make must pass the strictest Pod Security level.
  await restrictedNamespace(ns);
  fixture = await startOperators({ id, watched: [ns], count: 2, lease });
  operators = fixture.operators;
  await apply([
    ...['recordings', 'keyframes'].map((v) => boundVolume(ns, `alpha-${v}`, ['ReadWriteMany'])),
    // gamma's pod gets claims of its own from the StatefulSet
    ...['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-gamma-0`)),
  ]);
}, 120_000);

afterAll(() => fixture?.teardown(), 60_000);

describe('rtmpd-operator against the API server', () => {
  it('elects exactly one leader', async () => {
    const holder = await eventually('a lease holder', leaseHolder, 30_000);
    expect(operators.map((o) => o.identity)).toContain(holder);
    const [a, b] = await Promise.all(operators.map((o) => fetch(`${o.metrics}/metrics`).then((r) => r.text())));
    const status = (text: string) => Number(/^leader_election_master_status\{[^}]*\} (\d)/m.exec(text)?.[1]);
    expect([status(a!), status(b!)].sort()).toEqual([0, 1]);
  });

  it('creates the StatefulSet, Services, shared claims and ConfigMap with owner references and the expected fields', async () => {
    await apply(server('alpha', { ...rwx, snapshot: { enabled: true }, rtmpd: { chunkSize: 8192 } }));
    const owner = (await get('rtmpserver', ns, 'alpha'))!;
    const dep = await eventually('StatefulSet alpha', () => get('statefulset', ns, 'alpha'));
    const svc = await eventually('Service alpha', () => get('service', ns, 'alpha'));
    const headless = await eventually('Service alpha-pods', () => get('service', ns, 'alpha-pods'));
    const cm = await eventually('ConfigMap alpha-rtmpd', () => get('configmap', ns, 'alpha-rtmpd'));
    const pvcs = await eventually('two PVCs', async () => {
      const items = await list('pvc', ns, 'app.kubernetes.io/instance=alpha');
      return items.length === 2 ? items : undefined;
    });
    // the fleet: the pods' account, allowed the fleet's Leases, and the token they present to each other
    const account = await eventually('ServiceAccount alpha-rtmpd', () => get('serviceaccount', ns, 'alpha-rtmpd'));
    const role = await eventually('Role alpha-rtmpd', () => get('role', ns, 'alpha-rtmpd'));
    const binding = await eventually('RoleBinding alpha-rtmpd', () => get('rolebinding', ns, 'alpha-rtmpd'));
    const token = await eventually('Secret alpha-fleet-token', () => get('secret', ns, 'alpha-fleet-token'));
    for (const o of [dep, svc, headless, cm, ...pvcs, account, role, binding, token])
      expect(ownedBy(o, owner), o.metadata.name).toBeTruthy();
    expect(Buffer.from(token.data?.token ?? '', 'base64').toString()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(dep.spec.template.spec.serviceAccountName).toBe('alpha-rtmpd');
    expect(dep.spec.template.spec.automountServiceAccountToken).toBe(true);
    expect((account as Kube & { automountServiceAccountToken?: boolean }).automountServiceAccountToken).toBe(false);
    const podAccount = `system:serviceaccount:${ns}:alpha-rtmpd`;
    const podCan = async (...args: string[]) =>
      (await kubectl(['auth', 'can-i', ...args, '-n', ns, `--as=${podAccount}`], { allowFailure: true })).stdout.trim();
    expect(await podCan('create', 'leases.coordination.k8s.io')).toBe('yes');
    expect(await podCan('get', 'secrets')).toBe('no');
    expect(await podCan('list', 'pods')).toBe('no');
    expect(headless.spec.clusterIP).toBe('None');
    expect(dep.spec.serviceName).toBe('alpha-pods');
    const c = dep.spec.template.spec.containers[0];
    expect(c.image).toMatch(/^ghcr\.io\/fluxiot\/rtmpd:/);
    expect(c.args).toEqual(
      expect.arrayContaining(['--config=/etc/rtmpd/rtmpd.yaml', '--rtmp-bind=0.0.0.0:1935', '--http-bind=0.0.0.0:8082']),
    );
    expect(c.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/rtmpd', readOnly: true });
    expect(c.readinessProbe.httpGet.path).toBe('/ready');
    expect(dep.spec.template.metadata.annotations[checksumAnnotation]).toMatch(/^[0-9a-f]{64}$/);
    expect(dep.spec.template.metadata.annotations['prometheus.io/scrape']).toBe('true');
    expect(svc.spec.ports.map((p: { name: string; port: number }) => `${p.name}:${p.port}`)).toEqual(['rtmp:1935', 'http:8082']);
    expect(cm.data?.['rtmpd.yaml']).toContain('chunkSize: 8192');
    expect(cm.data?.['rtmpd.yaml']).toContain('snapshotEnabled: true');
    expect(pvcs.map((p) => p.spec.accessModes)).toEqual([['ReadWriteMany'], ['ReadWriteMany']]);
    // defaults from the schema are stored, but not the image: the operator applies its own
    expect(owner.spec).toMatchObject({ replicas: 1, ports: { rtmp: 1935, http: 8082 }, service: { type: 'ClusterIP' }, logLevel: 'info' });
    expect(owner.spec.image).toBeUndefined();
    expect((await eventsOf(ns, 'alpha', 'Created')).length).toBeGreaterThanOrEqual(5);
  });

  it('runs the pods on kwok nodes and reports Ready with observedGeneration == generation', async () => {
    const o = await waitReady('alpha');
    expect(o.status.readyReplicas).toBe(1);
    expect(o.status.endpoints.rtmp).toBe(`rtmp://alpha.${ns}.svc:1935/live`);
    expect(condition(o, 'Stalled')?.status).toBe('False');
    expect(condition(o, 'Reconciling')?.status).toBe('False');
    // the running version
    expect(o.status.image).toMatch(/^ghcr\.io\/fluxiot\/rtmpd:\d+\.\d+\.\d+/);
    // admitted in a namespace that enforces the restricted Pod Security level
    expect((await kubectlJson<Kube>(['get', 'namespace', ns])).metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const pods = await list('pods', ns, 'app.kubernetes.io/instance=alpha');
    expect(pods.length).toBeGreaterThan(0);
    for (const p of pods) {
      expect(p.spec.nodeName).toMatch(/^kwok-/);
      expect(p.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    }
    const printed = await kubectl(['get', 'rtmp', 'alpha', '-n', ns]);
    expect(printed.stdout).toMatch(/NAME\s+READY\s+REPLICAS\s+STREAMS\s+RTMP\s+AGE/);
    expect(printed.stdout).toMatch(/alpha\s+True\s+1\s+0\s+rtmp:\/\//);
    expect((await list('pods', ns, 'app.kubernetes.io/instance=alpha')).map((p) => p.metadata.name)).toEqual(['alpha-0']);
  });

  it('reports the live publishers and players its pods keep in their fleet Leases, per pod and in total, and the streams as a printer column', async () => {
    const token = (await get('secret', ns, 'alpha-fleet-token'))?.data?.token;
    expect(token).toBeTruthy();
    const asPod = { kubeconfig: await serviceAccountKubeconfig(ns, 'alpha-rtmpd') };
    const now = new Date().toISOString().replace('Z', '000Z'); // a MicroTime, as the client library sends it
    const identity = 'alpha-0_0a1b2c3d';
    const lease = (publishers: number, players: number) =>
      podLease({
        fleet: 'alpha',
        pod: 'alpha-0',
        identity,
        httpAddress: '10.0.0.9:8082',
        durationSeconds: 10,
        publishers,
        players,
        draining: false,
        now,
        acquireTime: now,
      });
    const asLease = (o: object) => JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...o });
    // Written as rtmpd writes them, with the pods' ServiceAccount: the Role the operator made suffices.
    await kubectl(['create', '-n', ns, '-f', '-'], { ...asPod, input: asLease(lease(1, 3)) });
    await kubectl(['create', '-n', ns, '-f', '-'], {
      ...asPod,
      input: asLease(claimLease({ fleet: 'alpha', streamId: 'rtmp/live/cam', protocol: 'rtmp', identity, durationSeconds: 10, now })),
    });
    // a claim left by a process that is gone, and the Lease of a pod that does not exist: neither counts
    await kubectl(['create', '-n', ns, '-f', '-'], {
      ...asPod,
      input: asLease(
        claimLease({ fleet: 'alpha', streamId: 'rtmp/live/old', protocol: 'rtmp', identity: 'alpha-0_dead', durationSeconds: 10, now }),
      ),
    });
    await kubectl(['create', '-n', ns, '-f', '-'], {
      ...asPod,
      input: asLease(
        podLease({
          fleet: 'alpha',
          pod: 'alpha-7',
          identity: 'alpha-7_x',
          httpAddress: '10.0.0.7:8082',
          durationSeconds: 10,
          publishers: 9,
          players: 9,
          draining: false,
          now,
          acquireTime: now,
        }),
      ),
    });
    const counted = await eventually(
      'the counts in the status',
      async () => {
        const o = await get('rtmpserver', ns, 'alpha');
        return o?.status?.players === 3 ? o : undefined;
      },
      40_000,
    );
    expect(counted.status).toMatchObject({ streams: 1, publishers: 1, players: 3, pods: [{ name: 'alpha-0', publishers: 1, players: 3 }] });
    expect((await kubectl(['get', 'rtmp', 'alpha', '-n', ns])).stdout).toMatch(/alpha\s+True\s+1\s+1\s+rtmp:\/\//);
    // A renewal with a new load is reported; the status follows the pod's Lease.
    const current = await kubectlJson<{ metadata: { resourceVersion: string } }>(['get', 'lease', 'rtmpd-pod.alpha-0', '-n', ns]);
    const renewed = lease(2, 5);
    await kubectl(['replace', '-n', ns, '-f', '-'], {
      ...asPod,
      input: asLease({ ...renewed, metadata: { ...renewed.metadata, resourceVersion: current.metadata.resourceVersion } }),
    });
    await eventually(
      'the new counts',
      async () => ((await get('rtmpserver', ns, 'alpha'))?.status?.players === 5 ? true : undefined),
      40_000,
    );
    // the operator never replaced the token behind the user's back
    expect((await get('secret', ns, 'alpha-fleet-token'))?.data?.token).toBe(token);
    await kubectl(['delete', 'lease', '-n', ns, '-l', 'media.fluxiot.io/fleet=alpha']);
  }, 120_000);

  it('takes a live option (logLevel) into the mounted ConfigMap without replacing the pods, and says so in an Event', async () => {
    const dep = (await get('statefulset', ns, 'alpha'))!;
    const pods = await podUids('alpha');
    await kubectl(['patch', 'rtmpserver', 'alpha', '-n', ns, '--type=merge', '-p', '{"spec":{"logLevel":"debug"}}']);
    await eventually('the ConfigMap carries the new level', async () =>
      (await get('configmap', ns, 'alpha-rtmpd'))?.data?.['rtmpd.yaml']?.includes('logLevel: debug') ? true : undefined,
    );
    const event = await eventually('a ConfigChanged Event', () => eventOf('alpha', 'ConfigChanged'));
    expect(event.message).toContain('logLevel changed: the running pods apply it from their config file, without a restart');
    await waitReady('alpha');
    const after = (await get('statefulset', ns, 'alpha'))!;
    expect(after.metadata.generation).toBe(dep.metadata.generation);
    expect(await podUids('alpha')).toEqual(pods);
  });

  it('rolls the pods for an option that needs a restart, announced by an Event first', async () => {
    const before = (await get('statefulset', ns, 'alpha'))!;
    const oldSum = before.spec.template.metadata.annotations[checksumAnnotation];
    const oldPods = await podUids('alpha');
    await kubectl(['patch', 'rtmpserver', 'alpha', '-n', ns, '--type=merge', '-p', '{"spec":{"snapshot":{"intervalSeconds":10}}}']);
    const dep = await eventually('new checksum', async () => {
      const d = await get('statefulset', ns, 'alpha');
      return d && d.spec.template.metadata.annotations[checksumAnnotation] !== oldSum ? d : undefined;
    });
    const event = await eventually('a RollingPods Event', () => eventOf('alpha', 'RollingPods'));
    expect(event.message).toBe('options that need a restart changed (snapshotIntervalSeconds): the pods are replaced');
    // announced before the workload changed
    const withFields = await kubectlJson<Kube>(['get', 'statefulset', 'alpha', '-n', ns, '--show-managed-fields']);
    expect(withFields.spec.template.metadata.annotations[checksumAnnotation]).toBe(
      dep.spec.template.metadata.annotations[checksumAnnotation],
    );
    const updated = withFields.metadata.managedFields?.find((f) => f.manager === 'rtmpd-operator' && !f.subresource)?.time;
    expect(new Date(event.firstTimestamp ?? '').getTime()).toBeLessThanOrEqual(new Date(updated ?? '').getTime());
    expect((await get('configmap', ns, 'alpha-rtmpd'))?.data?.['rtmpd.yaml']).toContain('snapshotIntervalSeconds: 10');
    const o = await waitReady('alpha');
    expect(o.metadata.generation).toBe(3);
    await eventually('old pods replaced', async () => {
      const uids = await podUids('alpha');
      return uids.length > 0 && uids.every((u) => !oldPods.includes(u)) ? uids : undefined;
    });
  });

  it('scales through the scale subresource', async () => {
    await kubectl(['scale', 'rtmpserver', 'alpha', '-n', ns, '--replicas=2']);
    await eventually('StatefulSet at 2', async () => ((await get('statefulset', ns, 'alpha'))?.spec.replicas === 2 ? true : undefined));
    const o = await eventually('2 ready', async () => {
      const s = await waitReady('alpha');
      return s.status.readyReplicas === 2 ? s : undefined;
    });
    expect(o.status.replicas).toBe(2);
    const scale = JSON.parse((await kubectl(['get', 'rtmpserver', 'alpha', '-n', ns, '--subresource=scale', '-o', 'json'])).stdout) as {
      spec: { replicas: number };
      status: { replicas: number; selector: string };
    };
    expect(scale.spec.replicas).toBe(2);
    expect(scale.status).toEqual({ replicas: 2, selector: 'app.kubernetes.io/name=rtmpd,app.kubernetes.io/instance=alpha' });
    // several replicas: spread over nodes, and a PodDisruptionBudget; back to one, the same budget stays
    const pdb = await eventually('a PodDisruptionBudget', () => get('pdb', ns, 'alpha'));
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/instance': 'alpha' } } });
    expect((await get('statefulset', ns, 'alpha'))?.spec.template.spec.topologySpreadConstraints).toEqual([
      expect.objectContaining({ topologyKey: 'kubernetes.io/hostname', maxSkew: 1 }),
    ]);
    await kubectl(['scale', 'rtmpserver', 'alpha', '-n', ns, '--replicas=1']);
    await eventually('1 replica', async () => ((await get('statefulset', ns, 'alpha'))?.spec.replicas === 1 ? true : undefined));
    // Scaling (by hand or by the autoscaler) leaves the budget as it is: maxUnavailable holds at any scale.
    expect((await get('pdb', ns, 'alpha'))?.metadata.uid).toBe(pdb.metadata.uid);
  });

  it('recreates a deleted Service and reverts an edited StatefulSet', async () => {
    const old = (await get('service', ns, 'alpha'))!;
    await kubectl(['delete', 'service', 'alpha', '-n', ns]);
    const svc = await eventually('Service recreated', async () => {
      const s = await get('service', ns, 'alpha');
      return s && s.metadata.uid !== old.metadata.uid ? s : undefined;
    });
    expect(svc.spec.ports).toHaveLength(2);
    await kubectl([
      'patch',
      'statefulset',
      'alpha',
      '-n',
      ns,
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"example.invalid/other:1"}]',
    ]);
    await eventually('image restored', async () => {
      const d = await get('statefulset', ns, 'alpha');
      return d?.spec.template.spec.containers[0].image.startsWith('ghcr.io/fluxiot/rtmpd:') ? true : undefined;
    });
  });

  it('takes back at once a child stripped of its labels and owner references, as an update', async () => {
    // Events of the same message are counted in one object
    const count = async (reason: string, message: string) =>
      (await eventsOf(ns, 'alpha', reason)).find((e) => e.message === message)?.count ?? 0;
    const created = await count('Created', 'created Service alpha');
    const updated = await count('Updated', 'updated Service alpha');
    // Our Apply entry's time has whole seconds: a reconcile that takes the labels back from a cached copy
    // made before the strip, in the second of the previous test's apply, cannot tell that from no change.
    const service = await kubectlJson<Kube>(['get', 'service', 'alpha', '-n', ns, '--show-managed-fields']);
    const applied = service.metadata.managedFields?.find((f) => f.manager === 'rtmpd-operator' && f.operation === 'Apply')?.time;
    expect(applied).toBeDefined();
    await new Promise((r) => setTimeout(r, Math.max(0, new Date(applied ?? 0).getTime() + 1000 - Date.now())));
    const started = Date.now();
    await kubectl([
      'patch',
      'service',
      'alpha',
      '-n',
      ns,
      '--type=json',
      '-p',
      '[{"op":"remove","path":"/metadata/labels"},{"op":"remove","path":"/metadata/ownerReferences"}]',
    ]);
    await eventually('labels and owner reference restored', async () => {
      const s = await get('service', ns, 'alpha');
      return s?.metadata.labels?.['app.kubernetes.io/instance'] === 'alpha' && s.metadata.ownerReferences?.length ? true : undefined;
    });
    // the watch selects by label: the API server tells it the Service left, with its labels and owner, so no resync is needed
    expect(Date.now() - started).toBeLessThan(30_000);
    // not "created" again: the Service was there all along
    await eventually('an Updated Event', async () => ((await count('Updated', 'updated Service alpha')) > updated ? true : undefined));
    expect(await count('Created', 'created Service alpha')).toBe(created);
  });

  it.each([
    ['equal ports', { ports: { rtmp: 8082, http: 8082 } }, 'ports.rtmp and ports.http must differ'],
    ['the health port on the HTTP port', { ports: { health: 8082 } }, 'ports.health must differ from ports.rtmp and ports.http'],
    [
      'an RTMPS port taken by RTMP',
      { tls: { secretName: 'edge-tls', rtmpsPort: 1935 } },
      'tls.rtmpsPort and tls.httpsPort must differ from ports.rtmp, ports.http and ports.health',
    ],
    [
      'an HTTPS port taken by HTTP',
      { tls: { secretName: 'edge-tls', https: true, httpsPort: 8082 } },
      'tls.rtmpsPort and tls.httpsPort must differ from ports.rtmp, ports.http and ports.health',
    ],
    [
      'node ports on a ClusterIP Service',
      { service: { type: 'ClusterIP', nodePorts: { rtmp: 31935 } } },
      'service.nodePorts needs service.type NodePort or LoadBalancer',
    ],
    [
      'equal node ports',
      { service: { type: 'NodePort', nodePorts: { rtmp: 31935, http: 31935 } } },
      'service.nodePorts.rtmp and service.nodePorts.http must differ',
    ],
    [
      'autoscaling with minReplicas above maxReplicas',
      { autoscaling: { minReplicas: 3, maxReplicas: 2, targetPublishersPerPod: 10 } },
      'autoscaling.minReplicas must not exceed autoscaling.maxReplicas',
    ],
    [
      'a callback timeout the idle timeout cuts short',
      { auth: { rules: [{ method: 'callback', url: 'http://auth.example/check', timeoutMs: 5000 }] }, rtmpd: { idleTimeoutSeconds: 5 } },
      "a callback rule's timeoutMs (default 2000) must be less than spec.rtmpd.idleTimeoutSeconds (default 30) in ms",
    ],
    [
      'a fleet lease longer than a publish waits for a claim',
      { rtmpd: { fleetLeaseSeconds: 29 } },
      'spec.rtmpd.fleetLeaseSeconds (default 10) must be at most spec.rtmpd.idleTimeoutSeconds (default 30) less 2',
    ],
    [
      'a JWKS URL that is not http(s)',
      { auth: { rules: [{ method: 'jwt', jwksUrl: 'ftp://keys.example/jwks' }] } },
      'spec.auth.rules[0].jwksUrl: Invalid value: "ftp://keys.example/jwks": must be an http:// or https:// URL with a host (and a port of at most 65535)',
    ],
    [
      'a callback URL that is not http(s)',
      { auth: { rules: [{ method: 'callback', url: 'file:///etc/passwd' }] } },
      'spec.auth.rules[0].url: Invalid value: "file:///etc/passwd": must be an http:// or https:// URL with a host (and a port of at most 65535)',
    ],
    [
      'a callback URL with a port above 65535',
      { auth: { rules: [{ method: 'callback', url: 'https://auth.example:99999/check' }] } },
      'spec.auth.rules[0].url: Invalid value: "https://auth.example:99999/check": must be an http:// or https:// URL',
    ],
    [
      'an OTLP endpoint without a host',
      { otel: { endpoint: 'http://' } },
      'spec.otel.endpoint: Invalid value: "http://": must be an http:// or https:// URL with a host (and a port of at most 65535)',
    ],
    ['an unknown log level', { logLevel: 'verbose' }, 'Unsupported value: "verbose"'],
    ['a snapshot quality rtmpd refuses', { snapshot: { quality: 40 } }, 'spec.snapshot.quality'],
    ['a zero volume size', { storage: { recordings: { size: '0' } } }, 'recordings must be larger than zero'],
    ['a negative volume size', { storage: { keyframes: { size: '-1Gi' } } }, 'spec.storage.keyframes.size'],
    ['an unknown resource name', { resources: { limits: { gpu: 1 } } }, 'resource names are cpu, memory, ephemeral-storage'],
    [
      'a request above its limit',
      { resources: { limits: { memory: '1Gi' }, requests: { memory: '2Gi' } } },
      'a resource request may not exceed its limit',
    ],
    ['a negative quantity', { resources: { requests: { cpu: -1 } } }, 'a quantity may not be negative'],
    [
      'a node affinity requirement without values',
      {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'In' }] }] },
          },
        },
      },
      'In, NotIn, Gt and Lt need values',
    ],
    ['a misspelt affinity field', { affinity: { nodeAfinity: {} } }, 'unknown field "spec.affinity.nodeAfinity"'],
    [
      'a toleration with operator Exists and a value',
      { tolerations: [{ key: 'a', operator: 'Exists', value: 'x' }] },
      'a toleration with operator Exists takes no value',
    ],
    [
      'tolerationSeconds without NoExecute',
      { tolerations: [{ key: 'a', tolerationSeconds: 5 }] },
      'tolerationSeconds needs effect NoExecute',
    ],
    ['a bad annotation key', { podAnnotations: { 'bad key!': 'x' } }, 'annotation keys must be qualified names'],
    ['a bad node selector value', { nodeSelector: { pool: 'bad value!' } }, 'spec.nodeSelector.pool'],
    [
      'a load-balancer source range that is not a CIDR',
      { service: { type: 'LoadBalancer', loadBalancerSourceRanges: ['10.0.0.0'] } },
      'loadBalancerSourceRanges entries must be CIDRs',
    ],
    [
      'an external traffic policy on a ClusterIP Service',
      { service: { externalTrafficPolicy: 'Local' } },
      'service.externalTrafficPolicy needs service.type NodePort or LoadBalancer',
    ],
    [
      'ReadWriteOncePod with another access mode',
      { storage: { recordings: { accessModes: ['ReadWriteOncePod', 'ReadWriteOnce'] } } },
      'ReadWriteOncePod cannot be combined with other access modes',
    ],
    [
      'an existingClaim that cannot name a claim',
      { storage: { recordings: { existingClaim: 'Bad_Name' } } },
      'spec.storage.recordings.existingClaim',
    ],
    [
      'a PodDisruptionBudget budget that is neither a number nor a percentage',
      { podDisruptionBudget: { maxUnavailable: '1Gi' } },
      'spec.podDisruptionBudget.maxUnavailable',
    ],
    [
      'a seccomp Localhost profile without its file',
      { podSecurityContext: { seccompProfile: { type: 'Localhost' } } },
      'localhostProfile is needed with type Localhost',
    ],
  ])('refuses %s with a message the user understands', async (_what, spec, message) => {
    const r = await kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(server('bad', spec)), allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it('keeps storageClassName, accessModes and existingClaim immutable both ways: set, changed and removed', async () => {
    const volume = { storage: { recordings: { storageClassName: storageClass }, keyframes: {} } };
    await apply(server('frozen', { replicas: 0, ...volume }));
    const patch = async (ops: object[]) =>
      kubectl(['patch', 'rtmpserver', 'frozen', '-n', ns, '--type=json', '-p', JSON.stringify(ops)], { allowFailure: true });
    const refusals = await Promise.all([
      patch([{ op: 'remove', path: '/spec/storage/recordings/storageClassName' }]),
      patch([{ op: 'replace', path: '/spec/storage/recordings/storageClassName', value: 'other' }]),
      patch([{ op: 'add', path: '/spec/storage/keyframes/storageClassName', value: 'other' }]),
      patch([{ op: 'replace', path: '/spec/storage/recordings/accessModes', value: ['ReadWriteMany'] }]),
      patch([
        { op: 'remove', path: '/spec/storage/keyframes/accessModes' },
        { op: 'add', path: '/spec/storage/keyframes/accessModes', value: ['ReadOnlyMany'] },
      ]),
      patch([{ op: 'add', path: '/spec/storage/keyframes/existingClaim', value: 'nas' }]),
    ]);
    for (const [i, r] of refusals.entries()) {
      expect(r.code, `patch ${i}`).not.toBe(0);
      expect(r.stderr, `patch ${i}`).toMatch(
        /((storageClassName|accessModes) is immutable: it cannot be set, changed or removed after creation|existingClaim cannot be set or removed after creation)/,
      );
    }
    // an unchanged value and other fields still change
    expect((await patch([{ op: 'replace', path: '/spec/storage/recordings/size', value: '20Gi' }])).code).toBe(0);
    await kubectl(['delete', 'rtmpserver', 'frozen', '-n', ns, '--wait=false']);
    await apply(server('shared', { replicas: 0, storage: { recordings: { existingClaim: 'nas' } } }));
    const removed = await kubectl(
      ['patch', 'rtmpserver', 'shared', '-n', ns, '--type=json', '-p', '[{"op":"remove","path":"/spec/storage/recordings/existingClaim"}]'],
      { allowFailure: true },
    );
    expect(removed.stderr).toContain('existingClaim cannot be set or removed after creation');
    await kubectl([
      'patch',
      'rtmpserver',
      'shared',
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"spec":{"storage":{"recordings":{"existingClaim":"nas2"}}}}',
    ]);
    await kubectl(['delete', 'rtmpserver', 'shared', '-n', ns, '--wait=false']);
  });

  it('runs a ReadWriteOnce server with claims of its pods, and refuses an invalid name', async () => {
    await apply(
      server('gamma', { storage: { recordings: { storageClassName: storageClass }, keyframes: { storageClassName: storageClass } } }),
    );
    await waitReady('gamma');
    const bad = await kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(server('9lives', {})), allowFailure: true });
    expect(bad.stderr).toContain('metadata.name must be a DNS-1035 label');
  });

  it('watches ServiceMonitors, also when their CRD appears later: a missing API reported, then the ServiceMonitor made without an edit, a deleted one recreated', async () => {
    // The monitoring CRDs are cluster-wide: the tests that install them take turns.
    await withClusterLock('monitoring-crds', async () => {
      await kubectl(['wait', '--for=delete', 'crd/servicemonitors.monitoring.coreos.com', '--timeout=60s'], { allowFailure: true });
      await apply(server('monitored', { replicas: 0, metrics: { serviceMonitor: { enabled: true } } }));
      const o = await waitCondition(ns, 'monitored', 'ServiceMonitorReady', 'False', 'CRDNotInstalled');
      expect(condition(o, 'Stalled')?.status).toBe('False');
      expect(await get('statefulset', ns, 'monitored')).toBeDefined();
      expect(await eventOf('monitored', 'ServiceMonitorUnavailable')).toBeDefined();
      try {
        await kubectl(['apply', '--server-side', '-f', monitoringCrds]);
        await waitEstablished(['-f', monitoringCrds]);
        // No edit of the RtmpServer: the operator sees the API appear.
        const made = await eventually('the ServiceMonitor', () => get('servicemonitor', ns, 'monitored'), 90_000);
        expect(ownedBy(made, o)).toBeTruthy();
        await waitCondition(ns, 'monitored', 'ServiceMonitorReady', 'True', 'Applied');
        await kubectl(['delete', 'servicemonitor', 'monitored', '-n', ns]);
        await eventually(
          'the deleted ServiceMonitor made again',
          async () => {
            const again = await get('servicemonitor', ns, 'monitored');
            return again && again.metadata.uid !== made.metadata.uid ? again : undefined;
          },
          30_000,
        );
      } finally {
        await kubectl(['delete', '-f', monitoringCrds, '--ignore-not-found', '--wait=true', '--timeout=60s'], { allowFailure: true });
      }
    });
  });

  it('reports a failing apply as Stalled with the child and its error, in a Warning Event too, and retries', async () => {
    const nodePort = 30000 + (parseInt(id, 16) % 2700);
    const spec = { replicas: 0, service: { type: 'NodePort', nodePorts: { rtmp: nodePort } } };
    await apply(server('np-one', spec));
    await eventually('np-one Service', () => get('service', ns, 'np-one'));
    await apply(server('np-two', spec));
    const o = await waitCondition(ns, 'np-two', 'Stalled', 'True', 'ApplyFailed');
    expect(condition(o, 'Stalled')?.message).toMatch(/^Service np-two: 422: .*already allocated/);
    expect(condition(o, 'Reconciling')?.status).toBe('False');
    expect(condition(o, 'Ready')?.status).toBe('False');
    // every retry fails the same way: one Event whose count rises, not one Event per retry
    const failed = await eventually('a repeated ReconcileFailed Event', async () => {
      const events = await eventsOf(ns, 'np-two', 'ReconcileFailed');
      return events.length === 1 && (events[0]?.count ?? 0) > 1 ? events : undefined;
    });
    expect(failed[0]?.type).toBe('Warning');
    // fixed by freeing the port: the retry with backoff repairs it
    await kubectl(['delete', 'rtmpserver', 'np-one', '-n', ns]);
    await waitCondition(ns, 'np-two', 'Stalled', 'False', undefined, 90_000);
    const l = (await leader())!;
    const text = await (await fetch(`${l.metrics}/metrics`)).text();
    expect(Number(/^controller_runtime_reconcile_errors_total\{controller="rtmpserver"\} (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
  }, 120_000);

  it('serves /healthz, /readyz and controller-runtime metrics', async () => {
    const l = (await leader())!;
    expect((await fetch(`${l.metrics}/healthz`)).status).toBe(200);
    expect((await fetch(`${l.metrics}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${l.metrics}/metrics`)).text();
    expect(
      Number(/^controller_runtime_reconcile_total\{controller="rtmpserver",result="success"\} (\d+)/m.exec(text)?.[1]),
    ).toBeGreaterThan(0);
    for (const name of [
      'controller_runtime_reconcile_errors_total',
      'controller_runtime_reconcile_time_seconds_bucket',
      'workqueue_depth',
      'workqueue_adds_total',
      'workqueue_queue_duration_seconds_bucket',
      'workqueue_work_duration_seconds_bucket',
      'workqueue_retries_total',
    ]) {
      expect(text, name).toContain(name);
    }
  });

  it('mounts the Secrets spec.auth names, reports a missing one as Stalled, and recovers when it appears', async () => {
    const keys = `keys-${id}`;
    await apply(server('guarded', { replicas: 0, auth: { rules: [{ app: 'live', method: 'keys', keysSecret: { name: keys } }] } }));
    const stalled = await eventually('Stalled SecretNotFound', async () => {
      const s = await get('rtmpserver', ns, 'guarded');
      return condition(s, 'Stalled')?.reason === 'SecretNotFound' ? s : undefined;
    });
    expect(condition(stalled, 'Stalled')?.message).toBe(
      `Secret "${keys}" (spec.auth.rules[0].keysSecret) not found in namespace ${ns}: the pods cannot start until it exists`,
    );
    const statefulSet = await get('statefulset', ns, 'guarded');
    const volumes = (statefulSet?.spec as { template: { spec: { volumes: { secret?: { secretName: string } }[] } } }).template.spec.volumes;
    expect(volumes.filter((v) => v.secret).map((v) => v.secret?.secretName)).toEqual(['guarded-fleet-token', keys]);
    await kubectl(['create', 'secret', 'generic', keys, '-n', ns, '--from-literal=cam1=s3cr3t-value']);
    await eventually(
      'Stalled to clear once the Secret exists',
      async () => (condition(await get('rtmpserver', ns, 'guarded'), 'Stalled')?.status === 'False' ? true : undefined),
      30_000,
    );
    // The Secret's value is in no object the operator wrote.
    for (const kindName of ['configmap', 'statefulset', 'rtmpserver'])
      expect(JSON.stringify(await get(kindName, ns, kindName === 'configmap' ? 'guarded-rtmpd' : 'guarded'))).not.toContain('s3cr3t-value');
  });

  it('serves RTMPS from spec.tls: the kubernetes.io/tls Secret mounted whole, the ports on the pod and the Services, the pod admitted as restricted', async () => {
    const secret = `tls-${id}`;
    const certificate = await selfSigned(join(tmpdir(), `rtmp-op-tls-${id}`));
    await kubectl(['create', 'secret', 'tls', secret, '-n', ns, `--cert=${certificate.certFile}`, `--key=${certificate.keyFile}`]);
    await apply(server('secure', { replicas: 1, tls: { secretName: secret, https: true } }));
    type Spec = { template: { spec: Record<string, any> } }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const statefulSet = await eventually('the StatefulSet', () => get('statefulset', ns, 'secure'));
    const pod = (statefulSet.spec as Spec).template.spec;
    const volume = pod.volumes.find((v: { secret?: { secretName: string } }) => v.secret?.secretName === secret);
    expect(volume).toBeDefined();
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: volume.name, mountPath: `/etc/rtmpd-secrets/${secret}`, readOnly: true });
    expect(pod.containers[0].ports).toEqual(
      expect.arrayContaining([
        { name: 'rtmps', containerPort: 443, protocol: 'TCP' },
        { name: 'https', containerPort: 8443, protocol: 'TCP' },
      ]),
    );
    for (const name of ['secure', 'secure-pods']) {
      const service = await eventually(`Service ${name}`, () => get('service', ns, name));
      expect((service.spec as { ports: object[] }).ports).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'rtmps', port: 443, targetPort: 'rtmps' }),
          expect.objectContaining({ name: 'https', port: 8443, targetPort: 'https' }),
        ]),
      );
    }
    // The namespace enforces the restricted Pod Security level: the pod with its port-443 sysctl is admitted.
    const [created] = await eventually('the pod', async () => {
      const pods = await list('pods', ns, 'app.kubernetes.io/instance=secure');
      return pods.length ? pods : undefined;
    });
    expect((created!.spec as { securityContext: object }).securityContext).toMatchObject({
      sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '443' }],
    });
    const status = await eventually('status.endpoints.rtmps', async () => {
      const s = await get('rtmpserver', ns, 'secure');
      return (s?.status as { endpoints?: { rtmps?: string } } | undefined)?.endpoints?.rtmps ? s : undefined;
    });
    expect((status.status as { endpoints: { rtmps: string } }).endpoints.rtmps).toBe(`rtmps://secure.${ns}.svc:443/live`);
    await kubectl(['delete', 'rtmpserver', 'secure', '-n', ns, '--wait=false']);
  });

  it('needs nothing beyond its own RBAC: no request was forbidden', async () => {
    // RBAC refusals read 'is forbidden: User "..." cannot ...' or carry a 403 code; a bare /403/ would
    // match log timestamps, a bare "forbidden" the API server's field validation ("Forbidden: ...").
    for (const o of operators) expect(o.logs()).not.toMatch(/is forbidden: User|"(code|statusCode)":\s*403\b/);
    const sa = `system:serviceaccount:${system}:rtmpd-operator`;
    const can = async (...args: string[]) =>
      (await kubectl(['auth', 'can-i', ...args, `--as=${sa}`], { allowFailure: true })).stdout.trim();
    expect(await can('patch', 'statefulsets', '-n', ns)).toBe('yes');
    expect(await can('delete', 'statefulsets', '-n', ns)).toBe('no');
    expect(await can('delete', 'pods', '-n', ns)).toBe('no');
    // Secrets: created (the fleet token's) and read where it watches (those an RtmpServer names, which
    // worked above), never changed, and not read elsewhere.
    for (const verb of ['create', 'get', 'list', 'watch']) expect(await can(verb, 'secrets', '-n', ns), verb).toBe('yes');
    for (const verb of ['update', 'patch', 'delete']) expect(await can(verb, 'secrets', '-n', ns), verb).toBe('no');
    expect(await can('get', 'secrets', '-n', 'default')).toBe('no');
    expect(await can('list', 'statefulsets', '-n', 'default')).toBe('no');
  });

  it('stops promptly with a full work queue (running reconciles finish, queued ones are left), hands leadership over, and the new leader reconciles', async () => {
    const first = (await leader())!;
    const other = operators.find((o) => o !== first)!;
    const burst = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
    await apply(burst.map((name) => server(name, { replicas: 0 })));
    await eventually('the leader at work on the burst', async () =>
      first.logs().includes(`"rtmpserver":"${ns}/burst-`) ? true : undefined,
    );
    const stopping = Date.now();
    expect(await first.stop()).toBe(0);
    const stopMs = Date.now() - stopping;
    const afterStop = first.logs().slice(first.logs().indexOf('SIGTERM, stopping'));
    // Only the reconciles running at SIGTERM (one per worker) went on.
    const reconciledAfter = new Set([...afterStop.matchAll(/"rtmpserver":"([^"]+)"/g)].map((m) => m[1]));
    expect(reconciledAfter.size, `reconciled after SIGTERM: ${[...reconciledAfter].join(', ')}`).toBeLessThanOrEqual(2);
    expect(afterStop).toContain('released the leader lease');
    console.log(`leader stopped in ${stopMs} ms with ${burst.length} RtmpServers just applied`);
    await eventually('the other operator leads', async () => ((await leaseHolder()) === other.identity ? true : undefined), 30_000);
    await apply(server('delta', { replicas: 0 }));
    await eventually('delta reconciled by the new leader', () => get('statefulset', ns, 'delta'));
    await eventually('the burst reconciled by the new leader', async () => {
      const made = await list('statefulset', ns);
      return burst.every((name) => made.some((s) => s.metadata.name === name)) ? true : undefined;
    });
  }, 120_000);

  it('takes over from a leader that died without releasing, once its lease expires', async () => {
    const dead = (await leader())!;
    const args = dead.child.spawnargs.slice(3); // after node --conditions=source main.ts
    const standby = await startOperator(args);
    operators.push(standby);
    dead.child.kill('SIGKILL');
    await dead.stop();
    // lease 15 s + retry 2 s, measured from when the standby last saw the lease change
    await eventually('the standby leads', async () => ((await leaseHolder()) === standby.identity ? true : undefined), 40_000);
    await apply(server('epsilon', { replicas: 0 }));
    await eventually('epsilon reconciled', () => get('statefulset', ns, 'epsilon'));
  }, 60_000);

  it('garbage-collects owned objects on delete; Retain keeps the claims', async () => {
    const gamma = await eventually('gamma claims', async () => {
      const items = await list('pvc', ns, 'app.kubernetes.io/instance=gamma');
      return items.length === 2 ? items : undefined;
    });
    for (const p of gamma) expect(p.metadata.ownerReferences ?? []).toEqual([]);
    await kubectl(['delete', 'rtmpserver', 'alpha', 'gamma', '-n', ns, '--wait=true', '--timeout=60s']);
    await eventually(
      'alpha and gamma children collected',
      async () => {
        const left = await Promise.all([
          get('statefulset', ns, 'alpha'),
          get('service', ns, 'alpha'),
          get('configmap', ns, 'alpha-rtmpd'),
          get('serviceaccount', ns, 'alpha-rtmpd'),
          get('role', ns, 'alpha-rtmpd'),
          get('rolebinding', ns, 'alpha-rtmpd'),
          get('secret', ns, 'alpha-fleet-token'),
          get('statefulset', ns, 'gamma'),
          get('service', ns, 'gamma'),
          get('configmap', ns, 'gamma-rtmpd'),
          ...(await list('pvc', ns, 'app.kubernetes.io/instance=alpha')).filter((p) => !p.metadata.deletionTimestamp),
        ]);
        return left.every((o) => o === undefined) ? true : undefined;
      },
      90_000,
    );
    const kept = await list('pvc', ns, 'app.kubernetes.io/instance=gamma');
    expect(kept.map((p) => p.metadata.name).sort()).toEqual(['keyframes-gamma-0', 'recordings-gamma-0']);
    expect(kept.every((p) => !p.metadata.deletionTimestamp)).toBe(true);
  });
});
