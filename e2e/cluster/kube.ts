// What cluster-backed tests use to reach the cluster that e2e/cluster/global-setup.ts
// provides: the admin kubeconfig, the pinned kubectl and helm, and kubeconfigs that
// authenticate as a ServiceAccount (so RBAC is really exercised).
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { inject } from 'vitest';
import { eventually } from '../lib/eventually.ts';

export { eventually };

export interface ClusterInfo {
  /** Admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** Folder with the pinned kubectl, helm, kind, kwok, etcd and kube-* binaries. */
  binDir: string;
  /** Where per-test kubeconfigs may be written. */
  scratchDir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    fluxCluster: ClusterInfo;
  }
}

export function cluster(): ClusterInfo {
  const info = inject('fluxCluster');
  if (!info) {
    throw new Error("no cluster: this project needs globalSetup: ['e2e/cluster/global-setup.ts']");
  }
  return info;
}

export interface RunOptions {
  /** Written to the child's stdin. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const result = { code: code ?? 128, stdout, stderr };
      if (result.code === 0 || opts.allowFailure) {
        resolve(result);
        return;
      }
      const why = signal ? `killed by ${signal}` : `exit ${result.code}`;
      reject(new Error(`${file} ${args.join(' ')}: ${why}\n${stderr.trim()}`));
    });
    // A command that exits without reading its input closes the pipe first;
    // its exit status says how it went, so that EPIPE is not an error here.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(opts.input ?? '');
  });
}

function toolEnv(kubeconfig: string): NodeJS.ProcessEnv {
  const { binDir } = cluster();
  return { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH ?? ''}` };
}

/** The pinned kubectl as admin, or as whoever `opts.kubeconfig` names. */
export function kubectl(args: readonly string[], opts: RunOptions & { kubeconfig?: string } = {}): Promise<RunResult> {
  const { binDir, kubeconfig } = cluster();
  return run(join(binDir, 'kubectl'), args, { ...opts, env: toolEnv(opts.kubeconfig ?? kubeconfig) });
}

/** kubectl returning parsed `-o json` output. */
export async function kubectlJson<T = unknown>(args: readonly string[], opts: RunOptions & { kubeconfig?: string } = {}): Promise<T> {
  const { stdout } = await kubectl([...args, '-o', 'json'], opts);
  return JSON.parse(stdout) as T;
}

/** The pinned helm against the cluster. */
export function helm(args: readonly string[], opts: RunOptions & { kubeconfig?: string } = {}): Promise<RunResult> {
  const { binDir, kubeconfig } = cluster();
  return run(join(binDir, 'helm'), args, { ...opts, env: toolEnv(opts.kubeconfig ?? kubeconfig) });
}

/**
 * Writes a kubeconfig that authenticates as ServiceAccount `namespace/name` with a
 * TokenRequest token (the ServiceAccount must exist) and returns its path.
 */
export async function serviceAccountKubeconfig(namespace: string, name: string, durationSeconds = 3600): Promise<string> {
  const { scratchDir } = cluster();
  const { stdout: token } = await kubectl(['create', 'token', name, '-n', namespace, `--duration=${durationSeconds}s`]);
  interface Minified {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  }
  const admin = await kubectlJson<Minified>(['config', 'view', '--minify', '--raw', '--flatten']);
  const target = admin.clusters[0];
  if (!target) throw new Error('the admin kubeconfig names no cluster');
  const user = `${namespace}.${name}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'flux-rtmpd', cluster: target.cluster }],
    users: [{ name: user, user: { token: token.trim() } }],
    contexts: [{ name: 'flux-rtmpd', context: { cluster: 'flux-rtmpd', user, namespace } }],
    'current-context': 'flux-rtmpd',
  };
  const path = join(scratchDir, 'sa', `${user}.kubeconfig`);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return path;
}

/**
 * Waits until CRDs are served. `kubectl wait --for=condition=Established` fails
 * at once, instead of waiting, on a CRD whose status has no conditions yet
 * (right after its creation), so it is retried.
 */
export async function waitEstablished(target: string[], timeoutMs = 60_000): Promise<void> {
  await eventually(
    `${target.join(' ')} to be Established`,
    async () => ((await kubectl(['wait', '--for=condition=Established', ...target, '--timeout=10s'])) ? true : undefined),
    timeoutMs,
  );
}

/**
 * Runs fn while holding a lock on the cluster shared by every test process (a
 * ConfigMap that only one can create), for tests that change cluster-wide state
 * others look at, such as installing the monitoring CRDs.
 */
export async function withClusterLock<T>(name: string, fn: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  const lock = `e2e-lock-${name}`;
  await eventually(
    `the cluster lock ${name}`,
    async () => ((await kubectl(['create', 'configmap', lock, '-n', 'kube-system'], { allowFailure: true })).code === 0 ? true : undefined),
    timeoutMs,
  );
  try {
    return await fn();
  } finally {
    await kubectl(['delete', 'configmap', lock, '-n', 'kube-system', '--ignore-not-found'], { allowFailure: true });
  }
}
