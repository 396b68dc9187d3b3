// Helpers for the operator's tests against the local control plane: a
// namespace per run, the operator as a child process under its own
// ServiceAccount and generated RBAC, hostPath PersistentVolumes pre-bound to
// the claims it creates (the cluster has no provisioner).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { stringify } from 'yaml';
import { clusterRole, leaderElectionRole } from '../src/rbac.ts';
import { cluster, eventually, kubectl, kubectlJson, serviceAccountKubeconfig, waitEstablished } from '../../e2e/cluster/kube.ts';

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
  await waitEstablished(['crd/rtmpservers.media.fluxiot.io']);
}

/** A ServiceAccount bound to the generated ClusterRole (renamed per run) and leader-election Role; returns its kubeconfig. */
async function operatorAccount(
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

/** The host directory behind boundVolume()'s PersistentVolume for a claim. */
export const volumeDir = (namespace: string, claim: string): string => `/tmp/flux-rtmpd-e2e/${namespace}/${claim}`;

/** A hostPath PV pre-bound to one claim, so the claim binds and the pod schedules. */
export function boundVolume(namespace: string, claim: string, accessModes: string[] = ['ReadWriteOnce'], className = storageClass): object {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${namespace}-${claim}`, labels: { 'e2e.flux-rtmpd/namespace': namespace } },
    spec: {
      capacity: { storage: '20Gi' },
      accessModes,
      storageClassName: className,
      persistentVolumeReclaimPolicy: 'Delete',
      hostPath: { path: volumeDir(namespace, claim) },
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
  const start = await new Promise<{ identity: string; metricsAddress: string; metricsScheme: string }>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`operator did not start:\n${out}`)), 30_000);
    const check = () => {
      for (const line of out.split('\n')) {
        if (!line.includes('rtmpd-operator starting')) continue;
        clearTimeout(timer);
        resolvePromise(JSON.parse(line) as { identity: string; metricsAddress: string; metricsScheme: string });
        return;
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`operator exited (${code}):\n${out}`)));
  });
  return {
    child,
    identity: start.identity,
    metrics: `${start.metricsScheme}://${start.metricsAddress}`,
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
): { status: string; reason: string; message: string; observedGeneration?: number; lastTransitionTime?: string } | undefined =>
  (o?.status?.conditions as { type: string; status: string; reason: string; message: string }[] | undefined)?.find((c) => c.type === type);

/** A test namespace where every pod must pass the restricted Pod Security level. */
export async function restrictedNamespace(name: string): Promise<void> {
  await kubectl(['create', 'namespace', name]);
  await kubectl([
    'label',
    'namespace',
    name,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/enforce-version=latest',
  ]);
}

export interface OperatorFixture {
  operators: OperatorProcess[];
  /** Stops the operators, keeps their logs in the scratch dir, removes the namespaces, PVs and the ClusterRole. */
  teardown: () => Promise<void>;
}

/**
 * Operator processes under their own ServiceAccount (in a system namespace of
 * their own) with the generated RBAC, watching `watched`; with `lease`, they
 * elect a leader.
 */
export async function startOperators(o: {
  id: string;
  watched: string[];
  count?: number;
  lease?: string;
  /** More flags for every operator. */
  args?: string[];
}): Promise<OperatorFixture> {
  const system = `rtmp-op-${o.id}`;
  await kubectl(['create', 'namespace', system]);
  const account = await operatorAccount(system, o.watched, o.id);
  const args = [
    '--kubeconfig',
    account.kubeconfig,
    `--namespaces=${o.watched.join(',')}`,
    ...(o.lease ? ['--leader-elect', `--leader-election-namespace=${system}`, `--leader-election-id=${o.lease}`] : []),
    '--metrics-bind=127.0.0.1:0',
    '--health-bind=127.0.0.1:0',
    '--log-level=debug',
    ...(o.args ?? []),
  ];
  const operators: OperatorProcess[] = [];
  for (let i = 0; i < (o.count ?? 1); i++) operators.push(await startOperator(args));
  return {
    operators,
    teardown: async () => {
      for (const [i, op] of operators.entries()) {
        await op.stop();
        // Kept for a look after a failure: <scratch>/rtmpd-operator-<id>-<n>.log
        await writeFile(join(cluster().scratchDir, `rtmpd-operator-${o.id}-${i}.log`), op.logs()).catch(() => undefined);
      }
      await kubectl(['delete', 'namespace', ...o.watched, system, '--wait=false', '--ignore-not-found'], { allowFailure: true });
      for (const ns of o.watched)
        await kubectl(['delete', 'pv', '-l', `e2e.flux-rtmpd/namespace=${ns}`, '--wait=false'], { allowFailure: true });
      await account.cleanup();
    },
  };
}

/** Storage on the suite's manual StorageClass for both volumes. */
export const manualStorage = { recordings: { storageClassName: storageClass }, keyframes: { storageClassName: storageClass } };

/**
 * A test file's set-up: the CRD, a namespace of its own named `prefix`-id
 * (under the restricted Pod Security level with `restricted`) and an operator
 * watching it (with more flags `args`), torn down after the file.
 */
export function operatorSuite(
  prefix: string,
  { restricted = false, args = [] as string[] } = {},
): { id: string; ns: string; metric: (name: string, labels?: string) => Promise<number> } {
  const id = suffix();
  const ns = `${prefix}-${id}`;
  let fixture: OperatorFixture | undefined;
  beforeAll(async () => {
    await installCrd();
    await (restricted ? restrictedNamespace(ns) : kubectl(['create', 'namespace', ns]));
    fixture = await startOperators({ id, watched: [ns], args });
  }, 120_000);
  afterAll(() => fixture?.teardown(), 60_000);
  return { id, ns, metric: (name, labels) => metricValue(fixture!.operators[0]!, name, labels) };
}

/** The sum of a metric's series on an operator's /metrics, of those whose labels include `labels` if given (0 when it has none). */
async function metricValue(operator: OperatorProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${operator.metrics}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

export const rtmpServer = (namespace: string, name: string, spec: object) => ({
  apiVersion: 'media.fluxiot.io/v1alpha1',
  kind: 'RtmpServer',
  metadata: { name, namespace },
  spec,
});

/** The RtmpServer once it reports Ready for its current generation. */
export const waitReady = (namespace: string, name: string, timeoutMs = 90_000): Promise<Kube> =>
  eventually(
    `${name} Ready`,
    async () => {
      const o = await get('rtmpserver', namespace, name);
      return condition(o, 'Ready')?.status === 'True' && o?.status?.observedGeneration === o?.metadata.generation ? o : undefined;
    },
    timeoutMs,
  );

/** The RtmpServer once its condition of that type has that status (and, if given, reason). */
export const waitCondition = (
  namespace: string,
  name: string,
  type: string,
  status: string,
  reason?: string,
  timeoutMs = 60_000,
): Promise<Kube> =>
  eventually(
    `${name} ${type}=${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      const o = await get('rtmpserver', namespace, name);
      const c = condition(o, type);
      return c?.status === status && (!reason || c.reason === reason) && o?.status?.observedGeneration === o?.metadata.generation
        ? o
        : undefined;
    },
    timeoutMs,
  );

export interface Event {
  type: string;
  reason: string;
  message: string;
  count?: number;
  firstTimestamp?: string;
}
export const eventsOf = async (namespace: string, name: string, reason: string): Promise<Event[]> =>
  (
    await kubectlJson<{ items: Event[] }>([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      `involvedObject.name=${name},reason=${reason}`,
    ])
  ).items;
