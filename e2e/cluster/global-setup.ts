// vitest globalSetup for cluster-backed suites: brings up the local control plane
// (hack/cluster.sh up: built from source on first use, tens of minutes cold) and
// provides `fluxCluster` (see kube.ts) to the tests; tears it down afterwards if it
// started it.
//
//   FLUX_RTMPD_USE_EXISTING_CLUSTER=1  use the cluster $KUBECONFIG points at instead
//                                      (the pinned kubectl/helm are still built/used)
//   FLUX_RTMPD_KEEP_CLUSTER=1          leave a cluster started here running afterwards
//   FLUX_RTMPD_CLUSTER_DIR             state dir of hack/cluster.sh (default <repo>/.cluster)
//
// It never skips: if the cluster cannot be had, setup fails with the reason.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import type { ClusterInfo } from './kube.ts';

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const clusterSh = join(repo, 'hack/cluster.sh');
const buildSh = join(repo, 'hack/k8s/build.sh');

// Several projects may list this file: one cluster per vitest process. Several
// vitest processes may share the default state dir too: each registers its pid in
// <state>/users/, and the last one leaves takes the cluster down, if an e2e run
// started it (<state>/started-by-e2e; a cluster someone started by hand stays up).
interface Shared {
  users: number;
  stateDir?: string;
  info?: Promise<ClusterInfo>;
}
const key = Symbol.for('flux-rtmpd.e2e.cluster');
const shared: Shared = ((globalThis as Record<symbol, unknown>)[key] as Shared | undefined) ?? { users: 0 };
(globalThis as Record<symbol, unknown>)[key] = shared;

/** Runs a script, streaming its stderr (build/start progress) to ours; resolves stdout. */
function script(file: string, args: string[], allowFailure = false): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code: code ?? 128, stdout, stderr };
      if (result.code === 0 || allowFailure) resolvePromise(result);
      else reject(new Error(`${file} ${args.join(' ')} failed (exit ${result.code}):\n${stderr.split('\n').slice(-40).join('\n')}`));
    });
  });
}

/** Reads the `export NAME='value'` lines hack/cluster.sh prints. */
function parseEnv(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const m of text.matchAll(/^export (\w+)='([^']*)'/gm)) {
    if (m[1] !== undefined && m[2] !== undefined) vars[m[1]] = m[2];
  }
  return vars;
}

async function acquire(): Promise<ClusterInfo> {
  if (process.env.FLUX_RTMPD_USE_EXISTING_CLUSTER === '1') {
    const kubeconfig = process.env.KUBECONFIG;
    if (!kubeconfig) throw new Error('FLUX_RTMPD_USE_EXISTING_CLUSTER=1 needs KUBECONFIG to name the cluster to use');
    const binDir = process.env.FLUX_RTMPD_K8S_BIN ?? (await script(buildSh, [])).stdout.trim();
    return { kubeconfig, binDir, scratchDir: await mkdtemp(join(tmpdir(), 'flux-rtmpd-e2e-')) };
  }
  const before = await script(clusterSh, ['status'], true);
  const up = await script(clusterSh, ['up']);
  const env = parseEnv(up.stdout);
  const kubeconfig = env.KUBECONFIG;
  const binDir = env.FLUX_RTMPD_K8S_BIN;
  if (!kubeconfig || !binDir) throw new Error(`hack/cluster.sh up printed no KUBECONFIG/FLUX_RTMPD_K8S_BIN:\n${up.stdout}`);
  const stateDir = resolve(kubeconfig, '..');
  shared.stateDir = stateDir;
  if (before.code !== 0) await writeFile(join(stateDir, 'started-by-e2e'), `${process.pid}\n`);
  await mkdir(join(stateDir, 'users'), { recursive: true });
  await writeFile(join(stateDir, 'users', String(process.pid)), '');
  return { kubeconfig, binDir, scratchDir: join(stateDir, 'scratch') };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Unregisters this process; true when the cluster should now be taken down. */
async function leave(stateDir: string): Promise<boolean> {
  const users = join(stateDir, 'users');
  await rm(join(users, String(process.pid)), { force: true });
  const others = (await readdir(users).catch(() => [] as string[])).map(Number).filter((pid) => pid !== process.pid && alive(pid));
  if (others.length > 0) return false;
  return readdir(stateDir).then(
    (names) => names.includes('started-by-e2e'),
    () => false,
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  shared.users += 1;
  shared.info ??= acquire();
  const info = await shared.info;
  project.provide('fluxCluster', info);
  // Children of the test processes (helm, kubectl by name) find the pinned tools and the cluster.
  process.env.KUBECONFIG = info.kubeconfig;
  process.env.FLUX_RTMPD_K8S_BIN = info.binDir;
  if (!(process.env.PATH ?? '').startsWith(`${info.binDir}:`)) {
    process.env.PATH = `${info.binDir}:${process.env.PATH ?? ''}`;
  }

  return async () => {
    shared.users -= 1;
    const stateDir = shared.stateDir;
    if (shared.users > 0 || stateDir === undefined) return;
    shared.info = undefined;
    shared.stateDir = undefined;
    if (!(await leave(stateDir))) return;
    if (process.env.FLUX_RTMPD_KEEP_CLUSTER === '1') {
      process.stderr.write('e2e: FLUX_RTMPD_KEEP_CLUSTER=1, leaving the cluster running (hack/cluster.sh down stops it)\n');
      return;
    }
    await script(clusterSh, ['down']);
  };
}
