// rtmpd processes standing in for the pods of one RtmpServer on the local
// control plane: each gets its own loopback address as its pod IP (127.0.0.2,
// .3, .4, ...), the same ports, the downward-API variables the operator sets,
// and a kubeconfig of the ServiceAccount the operator gives the pods, so the
// Lease RBAC is the real one.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { rtmpdPodRules } from '../../operator/src/rbac.ts';
import { serverEntry } from '../../rtmpd/test/support/processes.ts';
import { kubectl, serviceAccountKubeconfig } from '../cluster/kube.ts';
import { fleetPodEnv, type FleetPodIdentity } from './pod-env.ts';

/** The ServiceAccount, Role and RoleBinding the operator gives a fleet's pods; returns a kubeconfig of that account. */
export async function fleetPodAccount(namespace: string, name: string): Promise<string> {
  const rbac = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace }, rules: rtmpdPodRules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  ];
  await kubectl(['apply', '-f', '-'], { input: rbac.map((o) => stringify(o)).join('---\n') });
  return serviceAccountKubeconfig(namespace, name);
}

export interface FleetPodOptions extends FleetPodIdentity {
  rtmpPort: number;
  httpPort: number;
  dir: string;
  graceSeconds?: number;
  extraArgs?: string[];
}

export interface FleetPod {
  pod: string;
  ip: string;
  child: ChildProcess;
  logFile: string;
  rtmpUrl(app: string, key: string): string;
  httpUrl(path: string): string;
  exited: Promise<number | null>;
  /** SIGTERM (as the kubelet would) and the exit code. */
  stop(): Promise<number | null>;
  kill(): Promise<number | null>;
  log(): Promise<string>;
}

export async function startFleetPod(o: FleetPodOptions): Promise<FleetPod> {
  const data = join(o.dir, o.pod);
  await mkdir(data, { recursive: true });
  const logFile = join(o.dir, `${o.pod}.log`);
  const fleetEnv = await fleetPodEnv(o, data);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(
    process.execPath,
    [
      serverEntry(),
      `--rtmp-bind=${o.ip}:${o.rtmpPort}`,
      `--http-bind=${o.ip}:${o.httpPort}`,
      `--storage-dir=${join(data, 'recordings')}`,
      `--keyframe-dir=${join(data, 'keyframes')}`,
      `--shutdown-grace-seconds=${o.graceSeconds ?? 10}`,
      ...(o.extraArgs ?? []),
    ],
    {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        ...fleetEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://${o.ip}:${o.httpPort}`;
  const pod: FleetPod = {
    pod: o.pod,
    ip: o.ip,
    child,
    logFile,
    rtmpUrl: (app, key) => `rtmp://${o.ip}:${o.rtmpPort}/${app}/${key}`,
    httpUrl: (path) => `${base}${path}`,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
    log: () => readFile(logFile, 'utf8'),
  };
  // Ready once it answers /ready (it has joined the fleet by then).
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${o.pod} exited with ${child.exitCode}:\n${(await pod.log()).slice(-3000)}`);
    try {
      if ((await fetch(`${base}/ready`, { signal: AbortSignal.timeout(1000) })).ok) return pod;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${o.pod} not ready after 60 s:\n${(await pod.log()).slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
