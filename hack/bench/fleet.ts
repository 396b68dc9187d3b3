// +fleet scenarios: two rtmpd processes as pods edge-0 (127.0.0.2) and edge-1
// (127.0.0.3) of one fleet, their Leases in a kube-apiserver of the local control
// plane (hack/cluster.sh, in a state folder of the bench's own, stopped at the end).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../e2e/lib/free-port.ts';
import { REPO_ROOT, startServer, type RunningServer, type ServerOptions } from './servers.ts';

const execFileAsync = promisify(execFile);
const clusterSh = join(REPO_ROOT, 'hack/cluster.sh');
const namespace = 'bench-fleet';

export class FleetControlPlane {
  readonly #env: NodeJS.ProcessEnv;
  readonly kubeconfig: string;

  private constructor(env: NodeJS.ProcessEnv, kubeconfig: string) {
    this.#env = env;
    this.kubeconfig = kubeconfig;
  }

  /** Builds (once per machine, cached) and starts the control plane; a cold build takes tens of minutes. */
  static async up(stateDir: string): Promise<FleetControlPlane> {
    const env = { ...process.env, FLUX_RTMPD_CLUSTER_DIR: stateDir };
    const { stdout } = await execFileAsync(clusterSh, ['up'], { env, maxBuffer: 1 << 24 });
    const vars = Object.fromEntries([...stdout.matchAll(/^export (\w+)='([^']*)'/gm)].map((m) => [m[1], m[2]]));
    if (!vars.KUBECONFIG || !vars.FLUX_RTMPD_K8S_BIN) throw new Error(`hack/cluster.sh up printed no KUBECONFIG:\n${stdout}`);
    const plane = new FleetControlPlane(env, vars.KUBECONFIG);
    await execFileAsync(join(vars.FLUX_RTMPD_K8S_BIN, 'kubectl'), ['--kubeconfig', vars.KUBECONFIG, 'create', 'namespace', namespace]);
    return plane;
  }

  async down(): Promise<void> {
    await execFileAsync(clusterSh, ['down'], { env: this.#env });
  }

  /**
   * The owner (edge-0), where publishers go, and the relay (edge-1), where
   * players go; each a fresh fleet so no claim of an earlier run is left.
   */
  async startPair(options: ServerOptions): Promise<{ owner: RunningServer; relay: RunningServer }> {
    const fleet = `bench-${randomBytes(3).toString('hex')}`;
    const shared = { fleet, namespace, token: randomBytes(24).toString('hex'), kubeconfig: this.kubeconfig };
    const ports = { rtmpPort: await freePort(), httpPort: await freePort() };
    const owner = await startServer('rtmpd', { ...options, fleetPod: { ...shared, ...ports, pod: 'edge-0', ip: '127.0.0.2' } });
    let relay: RunningServer | undefined;
    try {
      relay = await startServer('rtmpd', {
        ...options,
        cpuProfDir: undefined,
        fleetPod: { ...shared, ...ports, pod: 'edge-1', ip: '127.0.0.3' },
      });
      await Promise.all([owner, relay].map(ready));
      return { owner, relay };
    } catch (err) {
      await Promise.all([owner.stop(), relay?.stop()]);
      throw err;
    }
  }
}

/** A fleet pod answers /ready once it has joined the fleet (its pod Lease is written). */
async function ready(server: RunningServer): Promise<void> {
  const url = new URL('/ready', server.httpBase);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    const died = server.exited();
    if (died) throw new Error(`fleet pod exited (${died}) before it was ready`);
    if (Date.now() > deadline) throw new Error(`fleet pod at ${server.httpBase} not ready after 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
