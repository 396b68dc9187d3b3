// Helpers for the operator's tests against the local control plane: a
// namespace per run, the operator as a child process under its own
// ServiceAccount and generated RBAC, hostPath PersistentVolumes pre-bound to
// the claims it creates (the cluster has no provisioner).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { clusterRole, leaderElectionRole } from '../src/rbac.ts';
import { kubectl, kubectlJson, serviceAccountKubeconfig } from '../../e2e/cluster/kube.ts';

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const storageClass = 'e2e-manual';

export const suffix = (): string => randomBytes(3).toString('hex');

export async function apply(obj: object | object[], namespace?: string): Promise<void> {
  const docs = (Array.isArray(obj) ? obj : [obj]).map((o) => stringify(o)).join('---\n');
  await kubectl(
    [
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=rtmpd-operator-e2e',
      ...(namespace ? ['-n', namespace] : []),
      '-f',
      '-',
    ],
    { input: docs },
  );
}

export async function installCrd(): Promise<void> {
  await kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=rtmpd-operator-e2e',
    '-f',
    resolve(repo, 'crds/media.fluxiot.io_rtmpservers.yaml'),
  ]);
  await kubectl(['wait', '--for=condition=Established', 'crd/rtmpservers.media.fluxiot.io', '--timeout=60s']);
}

/** A ServiceAccount bound to the generated ClusterRole (renamed per run) and leader-election Role; returns its kubeconfig. */
export async function operatorAccount(
  systemNamespace: string,
  watched: string[],
  id: string,
): Promise<{ kubeconfig: string; cleanup: () => Promise<void> }> {
  const sa = 'rtmpd-operator';
  const roleName = `rtmpd-operator-e2e-${id}`;
  const cr = { ...(clusterRole() as Record<string, unknown>), metadata: { name: roleName } };
  const le = {
    ...(leaderElectionRole() as Record<string, unknown>),
    metadata: { name: 'rtmpd-operator-leader-election', namespace: systemNamespace },
  };
  const subject = { kind: 'ServiceAccount', name: sa, namespace: systemNamespace };
  await apply([
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: systemNamespace } },
    cr,
    le,
    // The manager role only where it watches (a RoleBinding to the ClusterRole per namespace).
    ...watched.map((ns) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: roleName, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
      subjects: [subject],
    })),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'rtmpd-operator-leader-election', namespace: systemNamespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'rtmpd-operator-leader-election' },
      subjects: [subject],
    },
  ]);
  const kubeconfig = await serviceAccountKubeconfig(systemNamespace, sa);
  return {
    kubeconfig,
    cleanup: async () => {
      await kubectl(['delete', 'clusterrole', roleName, '--ignore-not-found'], { allowFailure: true });
    },
  };
}

/** A hostPath PV pre-bound to one claim, so the claim binds and the pod schedules. */
export function boundVolume(namespace: string, claim: string, accessModes: string[] = ['ReadWriteOnce']): object {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${namespace}-${claim}`, labels: { 'e2e.flux-rtmpd/namespace': namespace } },
    spec: {
      capacity: { storage: '20Gi' },
      accessModes,
      storageClassName: storageClass,
      persistentVolumeReclaimPolicy: 'Delete',
      hostPath: { path: `/tmp/flux-rtmpd-e2e/${namespace}/${claim}` },
      claimRef: { namespace, name: claim },
    },
  };
}

export interface OperatorProcess {
  child: ChildProcess;
  identity: string;
  metrics: string;
  logs: () => string;
  stop: () => Promise<number | null>;
}

/** Starts `node --conditions=source operator/src/main.ts` and waits for its start line. */
export async function startOperator(args: string[]): Promise<OperatorProcess> {
  const child = spawn(process.execPath, ['--conditions=source', resolve(repo, 'operator/src/main.ts'), ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KUBECONFIG: '' },
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const start = await new Promise<{ identity: string; metricsAddress: string }>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`operator did not start:\n${out}`)), 30_000);
    const check = () => {
      for (const line of out.split('\n')) {
        if (!line.includes('rtmpd-operator starting')) continue;
        clearTimeout(timer);
        resolvePromise(JSON.parse(line) as { identity: string; metricsAddress: string });
        return;
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`operator exited (${code}):\n${out}`)));
  });
  return {
    child,
    identity: start.identity,
    metrics: `http://${start.metricsAddress}`,
    logs: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface Kube {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    generation?: number;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    managedFields?: { manager: string; operation?: string; subresource?: string; time?: string }[];
  };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  status?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
}

export const get = (kind: string, namespace: string, name: string): Promise<Kube | undefined> =>
  kubectl(['get', kind, name, '-n', namespace, '-o', 'json', '--ignore-not-found']).then((r) =>
    r.stdout.trim() ? (JSON.parse(r.stdout) as Kube) : undefined,
  );

export const list = (kind: string, namespace: string, selector?: string): Promise<Kube[]> =>
  kubectlJson<{ items: Kube[] }>(['get', kind, '-n', namespace, ...(selector ? ['-l', selector] : [])]).then((l) => l.items);

export const condition = (
  o: Kube | undefined,
  type: string,
): { status: string; reason: string; message: string; observedGeneration?: number } | undefined =>
  (o?.status?.conditions as { type: string; status: string; reason: string; message: string }[] | undefined)?.find((c) => c.type === type);
