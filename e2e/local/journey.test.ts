// `make e2e`: the user's journey on the local control plane (hack/cluster.sh).
//   helm install the chart → the operator runs (as a local process with the
//   chart's ServiceAccount token and the chart's args: kwok pods run no
//   containers) → kubectl apply examples/rtmpserver.yaml → the operator creates
//   the StatefulSet, Services, ConfigMap and claims → rtmpd starts as a local
//   process with exactly the command, args and env of the generated pod template
//   → ffmpeg publishes with the key's secret from the example's Secret (a wrong
//   one is refused) → the API lists the stream, serves a JPEG snapshot,
//   /metrics counts it → the key rotated in the Secret ends the publisher
//   → the RtmpServer is Ready → delete, clean-up checked
//   (Retain keeps the claims, Delete removes them) → helm uninstall.
// The cluster steps are e2e/lib/steps.sh, the same code `make e2e-kind` runs.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cluster, eventually, kubectl, kubectlJson, run, serviceAccountKubeconfig, type RunResult } from '../cluster/kube.ts';
import { repo } from '../lib/chart.ts';
import { freePort } from '../lib/free-port.ts';
import { dockerImageConfig, localize, start, tail, type Container, type Started } from './pod-process.ts';

const suffix = randomBytes(3).toString('hex');
const operatorNs = `e2e-${suffix}-system`;
const appNs = `e2e-${suffix}-media`;
const release = `e2e-${suffix}`;
const fullname = `${release}-rtmpd-operator`;
const example = join(repo, 'examples/rtmpserver.yaml');
const stepsSh = join(repo, 'e2e/lib/steps.sh');
/** The stream key examples/rtmpserver.yaml's Secret has a secret for. */
const streamKey = 'test123';

let work: string;
let operator: Started | undefined;
let rtmpd: Started | undefined;
let serverName: string;
let operatorMetricsPort: number;
const createdPvs: string[] = [];

/** One step of e2e/lib/steps.sh, against the local cluster, progress on our stderr. */
async function step(name: string, args: string[], timeoutMs = 240_000): Promise<RunResult> {
  const { kubeconfig, binDir } = cluster();
  const env = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH ?? ''}`, E2E_TIMEOUT: '180' };
  const r = await run('bash', [stepsSh, name, ...args], { env, timeoutMs, allowFailure: true });
  process.stderr.write(r.stderr);
  if (r.code !== 0)
    throw new Error(`e2e/lib/steps.sh ${name} ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.split('\n').slice(-30).join('\n')}`);
  return r;
}

interface Workload {
  spec: {
    template: {
      spec: {
        containers: Container[];
        serviceAccountName?: string;
        volumes?: {
          name: string;
          persistentVolumeClaim?: { claimName: string };
          configMap?: { name: string };
          secret?: { secretName: string };
        }[];
      };
    };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}
interface Pod {
  metadata: { name: string; namespace: string; uid: string };
  spec: { nodeName?: string };
}
interface Pvc {
  metadata: { name: string; namespace: string };
  spec: { accessModes: string[]; resources: { requests: { storage: string } }; storageClassName?: string };
  status: { phase?: string };
}

const podOf = async (ns: string, selector: string): Promise<Pod> =>
  eventually(
    `a pod for ${selector} in ${ns}`,
    async () => (await kubectlJson<{ items: Pod[] }>(['get', 'pods', '-n', ns, '-l', selector])).items[0],
  );

/** Secret volumes written so far: mount path in the pod → local directory. */
const secretMounts = new Map<string, string>();

/**
 * A ConfigMap's keys as files in a local directory, as the kubelet mounts them; returns the directory.
 * The one rewrite: paths into mounted Secrets (auth rules, token files) → their local directories.
 */
async function writeConfigMap(name: string): Promise<string> {
  const cm = await kubectlJson<{ data?: Record<string, string> }>(['get', 'configmap', name, '-n', appNs]);
  const dir = join(work, 'configmaps', name);
  await mkdir(dir, { recursive: true });
  // Written whole and renamed into place, as the kubelet swaps its files, so a reader never sees half a file.
  for (const [key, original] of Object.entries(cm.data ?? {})) {
    let text = original;
    for (const [mountPath, local] of secretMounts)
      text = text.split(`${mountPath}/`).join(`${local}/`).split(`${mountPath}\n`).join(`${local}\n`);
    await writeFile(join(dir, `.${key}.tmp`), text);
    await rename(join(dir, `.${key}.tmp`), join(dir, key));
  }
  return dir;
}

let secretWrites = 0;

/**
 * A Secret's keys as files in a local directory, laid out as the kubelet's atomic writer does: the data in
 * a hidden versioned directory, `..data` a symlink to it (swapped whole by a rename on an update), each key
 * a symlink through `..data`. Called again, it syncs the directory to the Secret as the kubelet would.
 */
async function writeSecret(name: string): Promise<string> {
  const secret = await kubectlJson<{ data?: Record<string, string> }>(['get', 'secret', name, '-n', appNs]);
  const dir = join(work, 'secrets', name);
  const version = `..${Date.now()}_${++secretWrites}`;
  await mkdir(join(dir, version), { recursive: true });
  const data = secret.data ?? {};
  for (const [key, base64] of Object.entries(data)) await writeFile(join(dir, version, key), Buffer.from(base64, 'base64'));
  const previous = await readlink(join(dir, '..data')).catch(() => undefined);
  await symlink(version, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const entry of await readdir(dir)) if (!entry.startsWith('.') && !(entry in data)) await rm(join(dir, entry));
  for (const key of Object.keys(data)) if (!existsSync(join(dir, key))) await symlink(join('..data', key), join(dir, key));
  if (previous) await rm(join(dir, previous), { recursive: true });
  return dir;
}

/** Mounts the pod's Secret volumes first, then its ConfigMaps, whose files may point into the Secrets. */
const byKind = (volume: { secret?: unknown } | undefined) => (volume?.secret ? 0 : 1);

/** The RtmpServer of examples/rtmpserver.yaml (the file carries the Secrets it names before it). */
async function exampleServer(): Promise<{ kind: string; metadata: { name: string }; spec: { storage: { reclaimPolicy: string } } }> {
  const docs = parseAllDocuments(await readFile(example, 'utf8')).map((d) => d.toJS() as Awaited<ReturnType<typeof exampleServer>>);
  const server = docs.find((d) => d.kind === 'RtmpServer');
  if (!server) throw new Error(`${example} holds no RtmpServer`);
  return server;
}

async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(3000) })).ok;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'flux-rtmpd-e2e-'));
  for (const bin of ['operator/bin/rtmpd-operator.js', 'operator/dist/main.js', 'rtmpd/bin/rtmpd.js', 'rtmpd/dist/main.js']) {
    if (!existsSync(join(repo, bin))) throw new Error(`${bin} is missing: build first (make build / npx tsc -b)`);
  }
  await kubectl(['create', 'namespace', appNs]);
});

afterAll(async () => {
  await rtmpd?.stop(5000);
  await operator?.stop(5000);
  await run('bash', [stepsSh, 'helm-uninstall', release, operatorNs], {
    allowFailure: true,
    timeoutMs: 120_000,
    env: { ...process.env, KUBECONFIG: cluster().kubeconfig, PATH: `${cluster().binDir}:${process.env.PATH ?? ''}` },
  });
  await kubectl(['delete', 'namespace', appNs, operatorNs, '--wait=false', '--ignore-not-found'], { allowFailure: true });
  if (createdPvs.length) await kubectl(['delete', 'pv', ...createdPvs, '--wait=false', '--ignore-not-found'], { allowFailure: true });
  if (process.env.FLUX_RTMPD_KEEP_E2E !== '1') await rm(work, { recursive: true, force: true });
  else process.stderr.write(`e2e: logs and files kept in ${work}\n`);
});

describe('the user journey on the local control plane', () => {
  // Each step builds on the one before: after a failure the rest are skipped, not failed again.
  let broken = false;
  beforeEach((ctx) => {
    if (broken) ctx.skip();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') broken = true;
  });

  it('helm install: the operator Deployment is Available on a kwok node', async () => {
    await step('helm-install', [release, operatorNs, '--set', `watchNamespaces={${appNs}}`]);
    const pod = await podOf(operatorNs, `app.kubernetes.io/instance=${release}`);
    expect(pod.spec.nodeName).toMatch(/^kwok-node-/);
  });

  it('runs the operator locally with the chart’s ServiceAccount and the chart’s args; it leads and becomes ready', async () => {
    const deployment = await kubectlJson<Workload>(['get', 'deployment', fullname, '-n', operatorNs]);
    const container = deployment.spec.template.spec.containers[0] as Container;
    const pod = await podOf(operatorNs, `app.kubernetes.io/instance=${release}`);
    const saName = (
      await kubectlJson<{ spec: { template: { spec: { serviceAccountName: string } } } }>(['get', 'deployment', fullname, '-n', operatorNs])
    ).spec.template.spec.serviceAccountName;
    // Authenticate exactly as the pod would: a TokenRequest token of its ServiceAccount
    // (what hack/cluster.sh kubeconfig-for-sa writes), so the chart's RBAC is what is exercised.
    const kubeconfig = await serviceAccountKubeconfig(operatorNs, saName);
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    operatorMetricsPort = metricsPort;
    const cmd = localize({
      container,
      dockerfile: 'operator/Dockerfile',
      pod: pod.metadata,
      binds: { 'metrics-bind': `127.0.0.1:${metricsPort}`, 'health-bind': `127.0.0.1:${healthPort}` },
      extraEnv: { KUBECONFIG: kubeconfig },
    });
    expect(cmd.args).toEqual(expect.arrayContaining([`--namespaces=${appNs}`, '--leader-elect']));
    operator = start(cmd, join(work, 'operator.log'));
    await eventually(
      'the local operator’s /readyz',
      async () => {
        if (operator?.child.exitCode !== null) throw new Error(`the operator exited:\n${tail(join(work, 'operator.log'))}`);
        return (await httpOk(`http://127.0.0.1:${healthPort}/readyz`)) ? true : undefined;
      },
      60_000,
    );
    const lease = await eventually('the leader Lease', async () => {
      const l = await kubectlJson<{ spec: { holderIdentity?: string } }>([
        'get',
        'lease',
        'rtmpd-operator.media.fluxiot.io',
        '-n',
        operatorNs,
      ]);
      return l.spec.holderIdentity?.startsWith(`${hostname()}_`) ? l : undefined;
    });
    expect(lease.spec.holderIdentity).toBeTruthy();
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^leader_election_master_status\{[^}]*\} 1$/m);
  });

  it('kubectl apply examples/rtmpserver.yaml: the operator creates the StatefulSet, Services, ConfigMap and claims', async () => {
    serverName = (await step('apply-rtmpserver', [appNs, example])).stdout.trim();
    expect(serverName).toBe((await exampleServer()).metadata.name);
    await step('wait-children', [appNs, serverName]);
    await step('check-operator-metrics', [`http://127.0.0.1:${operatorMetricsPort}`]);
  });

  it('binds the claims to local volumes (the local control plane has no provisioner) and the RtmpServer becomes Ready', async () => {
    const pvcs = await kubectlJson<{ items: Pvc[] }>(['get', 'pvc', '-n', appNs, '-l', `app.kubernetes.io/instance=${serverName}`]);
    expect(pvcs.items.length).toBe(2);
    for (const pvc of pvcs.items) {
      // A hostPath volume per claim, pre-bound to it; its directory is what the
      // local rtmpd gets for the mount path, as a kubelet would mount it.
      const dir = join(work, 'volumes', pvc.metadata.name);
      await mkdir(dir, { recursive: true });
      const name = `${appNs}-${pvc.metadata.name}`;
      const pv = {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name, labels: { 'flux-rtmpd.test/e2e': suffix } },
        spec: {
          capacity: { storage: pvc.spec.resources.requests.storage },
          accessModes: pvc.spec.accessModes,
          storageClassName: pvc.spec.storageClassName ?? '',
          persistentVolumeReclaimPolicy: 'Retain',
          volumeMode: 'Filesystem',
          hostPath: { path: dir, type: 'Directory' },
          claimRef: { namespace: appNs, name: pvc.metadata.name },
        },
      };
      await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pv) });
      createdPvs.push(name);
    }
    await eventually('the claims to be Bound', async () => {
      const now = await kubectlJson<{ items: Pvc[] }>(['get', 'pvc', '-n', appNs, '-l', `app.kubernetes.io/instance=${serverName}`]);
      return now.items.every((p) => p.status.phase === 'Bound') ? true : undefined;
    });
    await step('wait-ready', [appNs, serverName]);
    const pod = await podOf(appNs, `app.kubernetes.io/instance=${serverName}`);
    expect(pod.spec.nodeName).toMatch(/^kwok-node-/);
  });

  it('the generated pod template boots the real rtmpd; ffmpeg publishes with the key from the Secret; the API lists the stream, serves a JPEG snapshot, /metrics and the RtmpServer status count it; rotating the key ends the publisher', async () => {
    const statefulSet = await kubectlJson<Workload>(['get', 'statefulset', serverName, '-n', appNs]);
    const template = statefulSet.spec.template.spec;
    const container = template.containers.find((c) => c.name === 'rtmpd') as Container;
    const pod = await podOf(appNs, `app.kubernetes.io/instance=${serverName}`);
    // mount path → the host directory of the PersistentVolume bound to the volume's claim (the
    // pod's own claim of a volumeClaimTemplate, <template>-<pod>), or for a ConfigMap volume a
    // directory with one file per key, as the kubelet writes it
    const mounts: Record<string, string> = {};
    const volumeOf = (m: { name: string }) => template.volumes?.find((v) => v.name === m.name);
    for (const m of [...(container.volumeMounts ?? [])].sort((a, b) => byKind(volumeOf(a)) - byKind(volumeOf(b)))) {
      const volume = volumeOf(m);
      if (volume?.configMap) {
        mounts[m.mountPath] = await writeConfigMap(volume.configMap.name);
        continue;
      }
      if (volume?.secret) {
        const dir = await writeSecret(volume.secret.secretName);
        mounts[m.mountPath] = dir;
        secretMounts.set(m.mountPath, dir);
        continue;
      }
      const perPod = statefulSet.spec.volumeClaimTemplates?.some((t) => t.metadata.name === m.name);
      const claim = perPod ? `${m.name}-${pod.metadata.name}` : volume?.persistentVolumeClaim?.claimName;
      if (!claim) continue;
      const pvc = await kubectlJson<{ spec: { volumeName: string } }>(['get', 'pvc', claim, '-n', appNs]);
      const pv = await kubectlJson<{ spec: { hostPath: { path: string } } }>(['get', 'pv', pvc.spec.volumeName]);
      mounts[m.mountPath] = pv.spec.hostPath.path;
    }
    // The keys live in a Secret the operator mounted: nothing of it is in the ConfigMap, the args or the status.
    const publishSecret = (await step('stream-secret', [appNs, 'edge-stream-keys', streamKey])).stdout;
    expect(publishSecret.length).toBeGreaterThan(8);
    const configMapText = JSON.stringify(
      await kubectlJson(['get', 'configmap', '-n', appNs, '-l', `app.kubernetes.io/instance=${serverName}`]),
    );
    const rtmpServerText = JSON.stringify(await kubectlJson(['get', 'rtmpserver', serverName, '-n', appNs]));
    for (const text of [configMapText, JSON.stringify(statefulSet.spec.template), rtmpServerText])
      expect(text).not.toContain(publishSecret);
    expect(configMapText).toContain('method: keys');
    const [rtmpPort, httpPort] = [await freePort(), await freePort()];
    const cmd = localize({
      container,
      dockerfile: 'rtmpd/Dockerfile',
      pod: pod.metadata,
      binds: { 'rtmp-bind': `127.0.0.1:${rtmpPort}`, 'http-bind': `127.0.0.1:${httpPort}` },
      mounts,
      // One pod of a fleet: the in-cluster credentials of the pod's ServiceAccount, whose Role the operator made.
      extraEnv: { KUBECONFIG: await serviceAccountKubeconfig(appNs, template.serviceAccountName ?? '') },
    });
    // Everything not rewritten is the template's, verbatim.
    const rewrittenFlags = new Set(cmd.rewrites.filter((r) => r.what.startsWith('--')).map((r) => r.what));
    expect([...rewrittenFlags].sort()).toEqual([
      '--config',
      '--fleet-token-file',
      '--http-bind',
      '--keyframe-dir',
      '--rtmp-bind',
      '--storage-dir',
    ]);
    const untouched = (container.args ?? []).filter((a) => ![...rewrittenFlags].some((f) => a.startsWith(`${f}=`)));
    expect(cmd.args).toEqual(expect.arrayContaining(untouched));
    // the entrypoint's own arguments (none: the image runs the script, whose shebang names node) + the template's
    const entrypoint = dockerImageConfig('rtmpd/Dockerfile').entrypoint;
    expect(cmd.args.length).toBe(entrypoint.length - 1 + (container.args ?? []).length);
    await writeFile(join(work, 'rtmpd.command.json'), JSON.stringify(cmd, null, 2));

    rtmpd = start(cmd, join(work, 'rtmpd.log'));
    const base = `http://127.0.0.1:${httpPort}`;
    await eventually(
      'rtmpd /health',
      async () => {
        if (rtmpd?.child.exitCode !== null) throw new Error(`rtmpd exited:\n${tail(join(work, 'rtmpd.log'))}`);
        return (await httpOk(`${base}/health`)) ? true : undefined;
      },
      30_000,
    );

    const publishLog = join(work, 'publish.log');
    const { kubeconfig, binDir } = cluster();
    const publisher = start(
      {
        file: 'bash',
        args: [stepsSh, 'publish', `rtmp://127.0.0.1:${rtmpPort}/live/${streamKey}?secret=${publishSecret}`, '60'],
        env: { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH ?? ''}` } as Record<string, string>,
        rewrites: [],
      },
      publishLog,
    );
    try {
      // Without the secret, the publisher is refused before it may publish, and ffmpeg exits.
      const refused = await run(
        'ffmpeg',
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-nostdin',
          '-f',
          'lavfi',
          '-i',
          'testsrc2=size=160x120:rate=10',
          '-t',
          '5',
          '-c:v',
          'libx264',
          '-f',
          'flv',
          `rtmp://127.0.0.1:${rtmpPort}/live/${streamKey}?secret=wrong`,
        ],
        { allowFailure: true },
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/Server error: publishing live\/test123 needs the stream key's \?secret=/);
      await step('check-api', [base, 'live', streamKey, join(work, 'api')], 180_000);
      // rtmpd runs as one pod of the RtmpServer's fleet: it claimed the stream in a Lease and reports its
      // publisher there, which the operator counts in the status (written at most every 10 s).
      expect(await readFile(join(work, 'rtmpd.log'), 'utf8')).toContain('fleet: joined');
      const counted = await eventually(
        'the stream in the RtmpServer status',
        async () => {
          const status = (
            await kubectlJson<{ status?: { streams?: number } & Record<string, unknown> }>(['get', 'rtmpserver', serverName, '-n', appNs])
          ).status;
          return status?.streams === 1 ? status : undefined;
        },
        40_000,
      );
      expect(counted).toMatchObject({ publishers: 1, pods: [{ name: pod.metadata.name, publishers: 1 }] });

      // The key's secret rotated in the Secret ends its live publisher: the kubelet's sync (emulated, as
      // for the ConfigMap below) swaps the mounted files, rtmpd re-reads them, no pod is replaced.
      const rotate = { stringData: { [streamKey]: `rotated-${randomBytes(8).toString('hex')}` } };
      await kubectl(['patch', 'secret', 'edge-stream-keys', '-n', appNs, '--type=merge', '-p', JSON.stringify(rotate)]);
      const rotated = Date.now();
      await writeSecret('edge-stream-keys');
      const ended = await Promise.race([publisher.exited, new Promise((r) => setTimeout(() => r('still publishing'), 15_000))]);
      expect(ended).not.toBe('still publishing');
      expect(Date.now() - rotated).toBeLessThan(15_000);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^rtmpd_auth_sessions_ended_total\{reason="revoked"\} 1$/m);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n--- publisher ---\n${tail(publishLog)}\n--- rtmpd ---\n${tail(join(work, 'rtmpd.log'))}`,
        { cause: err },
      );
    } finally {
      await publisher.stop(3000);
    }
    const jpeg = await readFile(join(work, 'api/snapshot.jpg'));
    expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const listed = JSON.parse(await readFile(join(work, 'api/stream.json'), 'utf8')) as {
      stream_id: string;
      video: { codec: string; width: number };
    };
    expect(listed.stream_id).toBe(`rtmp/live/${streamKey}`);
    expect(listed.video).toMatchObject({ codec: expect.stringMatching(/h264|avc/i), width: 640 });
    // The template's storage flags pointed rtmpd at the volume directories: the recording landed there.
    const recordingsDir = Object.entries(mounts).find(([path]) => path.includes('recordings'))?.[1];
    expect(recordingsDir).toBeTruthy();
    const found = await run('find', [recordingsDir as string, '-name', '*.mp4', '-size', '+1k']);
    expect(found.stdout.trim()).not.toBe('');

    // A live option changed on the RtmpServer reaches the running rtmpd through its mounted file
    // (rewritten here as the kubelet's ConfigMap sync would), with no new pod.
    const templateBefore = JSON.stringify(statefulSet.spec.template);
    await kubectl(['patch', 'rtmpserver', serverName, '-n', appNs, '--type=merge', '-p', '{"spec":{"logLevel":"debug"}}']);
    const configMapName = template.volumes?.find((v) => v.configMap)?.configMap?.name as string;
    await eventually('the ConfigMap to carry logLevel: debug', async () => {
      const cm = await kubectlJson<{ data: Record<string, string> }>(['get', 'configmap', configMapName, '-n', appNs]);
      return Object.values(cm.data).some((text) => text.includes('logLevel: debug')) ? true : undefined;
    });
    await writeConfigMap(configMapName);
    await eventually('rtmpd to reload its config', async () =>
      (await readFile(join(work, 'rtmpd.log'), 'utf8')).includes('"msg":"config reloaded"') ? true : undefined,
    );
    const after = await kubectlJson<Workload>(['get', 'statefulset', serverName, '-n', appNs]);
    expect(JSON.stringify(after.spec.template)).toBe(templateBefore);

    expect(await rtmpd.stop()).toBe(0); // SIGTERM, as the kubelet would: a clean exit
    rtmpd = undefined;
  });

  it('delete: the owned objects are garbage-collected, the Retain claims are kept', async () => {
    await step('delete-and-check-cleanup', [appNs, serverName]);
    const left = await kubectlJson<{ items: Pvc[] }>(['get', 'pvc', '-n', appNs, '-l', `app.kubernetes.io/instance=${serverName}`]);
    expect(left.items.length).toBe(2);
    await kubectl(['delete', 'pvc', '-n', appNs, '-l', `app.kubernetes.io/instance=${serverName}`, '--wait=false']);
  });

  it('delete with reclaimPolicy Delete: the claims go with the RtmpServer', async () => {
    const doc = await exampleServer();
    doc.metadata.name = `${doc.metadata.name}-delete`;
    doc.spec.storage.reclaimPolicy = 'Delete';
    const file = join(work, 'rtmpserver-delete.yaml');
    await writeFile(file, stringify(doc));
    const name = (await step('apply-rtmpserver', [appNs, file])).stdout.trim();
    await step('wait-children', [appNs, name]);
    await step('delete-and-check-cleanup', [appNs, name]);
  });

  it('stops the operator cleanly and helm uninstall removes the release', async () => {
    expect(await operator?.stop()).toBe(0);
    operator = undefined;
    await step('helm-uninstall', [release, operatorNs]);
    const sa = await kubectl(['get', 'serviceaccount', fullname, '-n', operatorNs], { allowFailure: true });
    expect(sa.code).not.toBe(0);
    expect(sa.stderr).toContain('(NotFound)');
  });
});
