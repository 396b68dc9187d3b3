// Proves the local control plane behaves like a real cluster where our operator
// and chart need it to: scheduling onto kwok nodes, Ready pods, garbage collection,
// Lease compare-and-swap, RBAC for ServiceAccounts, and the pinned tool versions.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, helm, kubectl, kubectlJson, serviceAccountKubeconfig } from './kube.ts';

const ns = `cluster-e2e-${randomBytes(3).toString('hex')}`;

interface PodList {
  items: {
    metadata: { name: string; ownerReferences?: { kind: string }[] };
    spec: { nodeName?: string };
    status: { phase?: string; conditions?: { type: string; status: string }[] };
  }[];
}
interface Lease {
  metadata: { name: string; resourceVersion: string };
  spec: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
}

beforeAll(async () => {
  await kubectl(['create', 'namespace', ns]);
});

afterAll(async () => {
  await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
});

describe('control plane', () => {
  it('is ready', async () => {
    const { stdout } = await kubectl(['get', '--raw', '/readyz']);
    expect(stdout.trim()).toBe('ok');
  });

  it('runs the pinned Kubernetes and Helm', async () => {
    const versions = await kubectlJson<{ clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } }>(['version']);
    expect(versions.clientVersion.gitVersion).toBe('v1.36.3');
    expect(versions.serverVersion.gitVersion).toBe('v1.36.3');
    const client = await kubectl(['version', '--client']);
    expect(client.stdout).toContain('Client Version: v1.36.3');
    const { stdout } = await helm(['version', '--template', '{{.Version}}']);
    expect(stdout.trim()).toBe('v3.22.0');
  });

  it('has schedulable kwok nodes', async () => {
    const nodes = await kubectlJson<{ items: { metadata: { name: string; annotations?: Record<string, string> } }[] }>(['get', 'nodes']);
    const fake = nodes.items.filter((n) => n.metadata.annotations?.['kwok.x-k8s.io/node'] === 'fake');
    expect(fake.length).toBeGreaterThanOrEqual(2);
  });
});

describe('workloads', () => {
  it('runs a Deployment to Ready pods on kwok nodes, then garbage-collects it', async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'web', image: 'registry.k8s.io/pause:3.10' }] },
        },
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment) });
    await kubectl(['rollout', 'status', 'deployment/web', '-n', ns, '--timeout=60s'], { timeoutMs: 70_000 });

    const pods = await kubectlJson<PodList>(['get', 'pods', '-n', ns, '-l', 'app=web']);
    expect(pods.items).toHaveLength(2);
    for (const pod of pods.items) {
      expect(pod.spec.nodeName).toMatch(/^kwok-node-/);
      expect(pod.status.phase).toBe('Running');
      expect(pod.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(pod.metadata.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
    }

    await kubectl(['delete', 'deployment', 'web', '-n', ns, '--wait=false']);
    await eventually('the ReplicaSet and Pods to be garbage-collected', async () => {
      const rs = await kubectlJson<{ items: unknown[] }>(['get', 'replicasets', '-n', ns, '-l', 'app=web']);
      const left = await kubectlJson<PodList>(['get', 'pods', '-n', ns, '-l', 'app=web']);
      return rs.items.length === 0 && left.items.length === 0 ? true : undefined;
    });
  });

  // There is no provisioner: a test pre-creates the PersistentVolume, reserved for its
  // claim (claimRef) so parallel runs never take each other's volumes.
  it('binds a PVC to a pre-created PersistentVolume reserved for it', async () => {
    const pv = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `${ns}-pv`, labels: { test: ns } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        storageClassName: 'manual',
        hostPath: { path: `/tmp/${ns}` },
        persistentVolumeReclaimPolicy: 'Delete',
        claimRef: { namespace: ns, name: 'data' },
      },
    };
    const pvc = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'manual', resources: { requests: { storage: '1Gi' } } },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pv, pvc] }) });
    try {
      await eventually('the PVC to be Bound', async () => {
        const claim = await kubectlJson<{ status: { phase?: string } }>(['get', 'pvc', 'data', '-n', ns]);
        return claim.status.phase === 'Bound' ? true : undefined;
      });
    } finally {
      await kubectl(['delete', 'pv', `${ns}-pv`, '--wait=false', '--ignore-not-found']);
    }
  });
});

describe('coordination', () => {
  it('creates and renews a Lease with resourceVersion compare-and-swap', async () => {
    const now = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    const lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'leader', namespace: ns },
      spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: now(), renewTime: now() },
    };
    await kubectl(['create', '-f', '-'], { input: JSON.stringify(lease) });
    const first = await kubectlJson<Lease>(['get', 'lease', 'leader', '-n', ns]);

    const renewed = { ...first, spec: { ...first.spec, renewTime: now() } };
    await kubectl(['replace', '-f', '-'], { input: JSON.stringify(renewed) });
    const second = await kubectlJson<Lease>(['get', 'lease', 'leader', '-n', ns]);
    expect(second.metadata.resourceVersion).not.toBe(first.metadata.resourceVersion);
    expect(second.spec.holderIdentity).toBe('a');

    // A competitor still holding the old resourceVersion loses.
    const stale = { ...first, spec: { ...first.spec, holderIdentity: 'b', renewTime: now() } };
    const lost = await kubectl(['replace', '-f', '-'], { input: JSON.stringify(stale), allowFailure: true });
    expect(lost.code).not.toBe(0);
    expect(lost.stderr).toMatch(/Conflict|has been modified/);
  });
});

describe('RBAC', () => {
  it('authenticates as a ServiceAccount and enforces its Role', async () => {
    await kubectl(['create', 'serviceaccount', 'reader', '-n', ns]);
    const kubeconfig = await serviceAccountKubeconfig(ns, 'reader');

    const denied = await kubectl(['get', 'pods', '-n', ns], { kubeconfig, allowFailure: true });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden/i);
    const whoami = await kubectlJson<{ status: { userInfo: { username: string } } }>(['auth', 'whoami'], { kubeconfig });
    expect(whoami.status.userInfo.username).toBe(`system:serviceaccount:${ns}:reader`);

    await kubectl(['create', 'role', 'pod-reader', '-n', ns, '--verb=get,list,watch', '--resource=pods']);
    await kubectl(['create', 'rolebinding', 'reader', '-n', ns, '--role=pod-reader', `--serviceaccount=${ns}:reader`]);
    await eventually('the RoleBinding to take effect', async () => {
      const allowed = await kubectl(['get', 'pods', '-n', ns], { kubeconfig, allowFailure: true });
      return allowed.code === 0 ? true : undefined;
    });
  });
});
