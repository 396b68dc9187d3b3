// spec.autoscaling through the whole chain on the local control plane: two rtmpd
// processes publish their rtmpd_publishers gauge, the Debian `prometheus` scrapes
// them every second, prometheus-adapter (built by hack/k8s/build.sh --adapter) runs
// the chart's rule and is registered as the v1beta1.custom.metrics.k8s.io
// APIService, the operator makes the HorizontalPodAutoscaler, and the real
// kube-controller-manager's HPA controller (syncing every 2 s, hack/cluster.sh)
// writes the RtmpServer's replicas through its scale subresource; the operator
// carries them to the StatefulSet.
//
// There is no kubelet: the StatefulSet's pods are Pod objects that kwok marks
// Running and Ready, and no rtmpd runs in them. The two rtmpd processes stand in
// for pods edge-0 and edge-1: Prometheus scrapes them with those pod names as
// labels, so the numbers the HPA sees come from real rtmpd processes with real
// ffmpeg publishers. The adapter authenticates to the API server with the admin
// kubeconfig (a cluster would give it the prometheus-adapter chart's RBAC).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterRulesPath } from '../../hack/generate/chart-readme.ts';
import { boundVolume, installCrd, startOperators, storageClass, type OperatorFixture } from '../../operator/test/harness.ts';
import { publishTestPattern, startServer, type Publisher, type RunningServer } from '../../rtmpd/test/support/processes.ts';
import { cluster, eventually, kubectl, kubectlJson, run } from '../cluster/kube.ts';
import { repo } from '../lib/chart.ts';
import { freePort } from '../lib/free-port.ts';
import { startPrometheus, type RunningPrometheus } from '../lib/prometheus.ts';

const suffix = randomBytes(3).toString('hex');
const namespace = `autoscale-${suffix}`;
const name = 'edge';
const apiService = 'v1beta1.custom.metrics.k8s.io';

let dir: string;
let operators: OperatorFixture | undefined;
let prometheus: RunningPrometheus | undefined;
let adapter: ChildProcess | undefined;
let adapterLog = '';
const rtmpd = new Map<string, RunningServer>();
const publishers: Publisher[] = [];
const started = Date.now();
const seconds = (since: number) => Math.round((Date.now() - since) / 100) / 10;

/** A child process whose stderr is kept for the failure message. */
function daemon(file: string, args: string[], onLog: (text: string) => void): ChildProcess {
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.setEncoding('utf8').on('data', onLog);
  return child;
}

interface Hpa {
  spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number };
  status?: {
    desiredReplicas?: number;
    currentMetrics?: { pods?: { metric: { name: string }; current: { averageValue: string } } }[];
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}
const hpa = (): Promise<Hpa | undefined> =>
  kubectl(['get', 'hpa', name, '-n', namespace, '-o', 'json', '--ignore-not-found']).then((r) =>
    r.stdout.trim() ? (JSON.parse(r.stdout) as Hpa) : undefined,
  );
const replicas = async (): Promise<{ server: number; statefulSet: number }> => {
  const server = await kubectlJson<{ spec: { replicas: number } }>(['get', 'rtmpserver', name, '-n', namespace]);
  const sts = await kubectlJson<{ spec: { replicas: number } }>(['get', 'statefulset', name, '-n', namespace]);
  return { server: server.spec.replicas, statefulSet: sts.spec.replicas };
};
const podMetric = async (): Promise<Record<string, number>> => {
  const raw = await kubectl(['get', '--raw', `/apis/custom.metrics.k8s.io/v1beta1/namespaces/${namespace}/pods/*/rtmpd_publishers`]);
  const list = JSON.parse(raw.stdout) as { items: { describedObject: { name: string }; value: string }[] };
  return Object.fromEntries(list.items.map((i) => [i.describedObject.name, Number(i.value)]));
};
const waitReplicas = (want: number, timeoutMs: number) =>
  eventually(
    `RtmpServer and StatefulSet at ${want} replicas`,
    async () => {
      const r = await replicas();
      return r.server === want && r.statefulSet === want ? r : undefined;
    },
    timeoutMs,
  );
const runningPods = async (): Promise<string[]> =>
  (
    await kubectlJson<{ items: { metadata: { name: string }; status: { phase: string } }[] }>([
      'get',
      'pods',
      '-n',
      namespace,
      '-l',
      `app.kubernetes.io/instance=${name}`,
    ])
  ).items
    .filter((p) => p.status.phase === 'Running')
    .map((p) => p.metadata.name)
    .sort();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rtmpd-autoscale-'));
  await installCrd();
  await kubectl(['create', 'namespace', namespace]);
  operators = await startOperators({ id: suffix, watched: [namespace] });
  // The claims of pods edge-0..2 bind to these (no provisioner on the local control plane).
  const volumes = [0, 1, 2].flatMap((i) => ['recordings', 'keyframes'].map((v) => boundVolume(namespace, `${v}-${name}-${i}`)));
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: volumes }) });

  for (const pod of ['edge-0', 'edge-1']) rtmpd.set(pod, await startServer());
  prometheus = await startPrometheus(
    'rtmpd',
    [...rtmpd].map(([pod, s]) => ({ address: `127.0.0.1:${s.httpPort}`, labels: { namespace, pod } })),
  );
  const promUrl = prometheus.url;
  // The adapter lists the series it serves at start and every relist: rtmpd's zeros must be on record first.
  await eventually('a first scrape of both rtmpd processes', async () => {
    const body = await prometheus!.query('count(rtmpd_publishers{pod!=""})');
    return body.data.result[0]?.value[1] === '2' ? true : undefined;
  });

  const adapterBin = join(
    (await run(join(repo, 'hack/k8s/build.sh'), ['--adapter'], { timeoutMs: 3_600_000 })).stdout.trim(),
    'prometheus-adapter',
  );
  const adapterPort = await freePort();
  const { kubeconfig } = cluster();
  adapter = daemon(
    adapterBin,
    [
      `--prometheus-url=${promUrl}`,
      `--config=${join(repo, adapterRulesPath)}`,
      '--metrics-relist-interval=1s',
      `--lister-kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${adapterPort}`,
      `--cert-dir=${join(dir, 'adapter-certs')}`,
      '--v=2',
    ],
    (t) => (adapterLog = (adapterLog + t).slice(-20_000)),
  );
  // Its self-signed serving certificate is why the APIService skips TLS verification.
  await eventually(
    'prometheus-adapter serving',
    async () => {
      if (adapter!.exitCode !== null) throw new Error(`prometheus-adapter exited ${adapter!.exitCode}\n${adapterLog.slice(-3000)}`);
      const r = await run('curl', ['-fsk', '-o', '/dev/null', `https://127.0.0.1:${adapterPort}/healthz`], { allowFailure: true });
      return r.code === 0 ? true : undefined;
    },
    60_000,
  );
  // No kube-proxy here: the API server reaches the adapter through an ExternalName Service naming 127.0.0.1.
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'prometheus-adapter', namespace },
          spec: { type: 'ExternalName', externalName: '127.0.0.1' },
        },
        {
          apiVersion: 'apiregistration.k8s.io/v1',
          kind: 'APIService',
          metadata: { name: apiService },
          spec: {
            group: 'custom.metrics.k8s.io',
            version: 'v1beta1',
            service: { name: 'prometheus-adapter', namespace, port: adapterPort },
            insecureSkipTLSVerify: true,
            groupPriorityMinimum: 100,
            versionPriority: 100,
          },
        },
      ],
    }),
  });
  await eventually('custom.metrics.k8s.io served with rtmpd_publishers', async () => {
    const r = await kubectl(['get', '--raw', '/apis/custom.metrics.k8s.io/v1beta1'], { allowFailure: true });
    return r.code === 0 && r.stdout.includes('pods/rtmpd_publishers') ? true : undefined;
  });
  process.stderr.write(`autoscaling: chain up in ${seconds(started)} s\n`);
}, 3_600_000);

afterAll(async () => {
  // First: an APIService whose server is gone fails discovery, and with it namespace deletion everywhere.
  await kubectl(['delete', 'apiservice', apiService, '--ignore-not-found'], { allowFailure: true });
  for (const p of publishers) p.child.kill('SIGKILL');
  adapter?.kill('SIGTERM');
  await prometheus?.stop();
  await Promise.all([...rtmpd.values()].map((s) => s.stop()));
  await operators?.teardown();
  await rm(dir, { recursive: true, force: true });
});

describe('spec.autoscaling on the local control plane', () => {
  it('scales the RtmpServer on live publishers per pod through Prometheus, prometheus-adapter and the HPA controller', async () => {
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'media.fluxiot.io/v1alpha1',
        kind: 'RtmpServer',
        metadata: { name, namespace },
        spec: {
          storage: { recordings: { storageClassName: storageClass }, keyframes: { storageClassName: storageClass } },
          autoscaling: { minReplicas: 1, maxReplicas: 3, targetPublishersPerPod: 1, scaleDownStabilizationSeconds: 0 },
        },
      }),
    });
    const made = await eventually('the operator made the HorizontalPodAutoscaler', hpa);
    expect(made.spec).toMatchObject({ scaleTargetRef: { kind: 'RtmpServer', name }, minReplicas: 1, maxReplicas: 3 });
    await eventually('pod edge-0 running', async () => ((await runningPods()).includes('edge-0') ? true : undefined), 90_000);
    // The HPA controller reads the metric (0 publishers) through the aggregated API and the RtmpServer's selector.
    const active = await eventually(
      'the HPA reads rtmpd_publishers',
      async () => {
        const h = await hpa();
        return h?.status?.conditions?.find((c) => c.type === 'ScalingActive')?.status === 'True' ? h : undefined;
      },
      60_000,
    );
    expect(active.status?.currentMetrics?.[0]?.pods).toMatchObject({
      metric: { name: 'rtmpd_publishers' },
      current: { averageValue: '0' },
    });
    expect(await replicas()).toEqual({ server: 1, statefulSet: 1 });

    // Two live publishers on edge-0 at a target of one per pod: two pods.
    const edge0 = rtmpd.get('edge-0')!;
    const t0 = Date.now();
    for (const key of ['cam-a', 'cam-b'])
      publishers.push(publishTestPattern(edge0.rtmpUrl('live', key), { seconds: 120, size: '320x180' }));
    expect(
      await eventually('the adapter serves 2 publishers on edge-0', async () => ((await podMetric())['edge-0'] === 2 ? true : undefined)),
    ).toBe(true);
    await waitReplicas(2, 60_000);
    const scaledUp = seconds(t0);
    await eventually(
      'pods edge-0 and edge-1 running',
      async () => ((await runningPods()).join() === 'edge-0,edge-1' ? true : undefined),
      90_000,
    );
    // edge-1 counts 0 (its stand-in rtmpd is idle): the average is 1 per pod, on target, so it stays at 2.
    expect(await podMetric()).toEqual({ 'edge-0': 2, 'edge-1': 0 });

    // The publishers leave: back to one pod (no stabilization window in this spec).
    const t1 = Date.now();
    for (const p of publishers.splice(0)) p.child.kill('SIGTERM');
    await waitReplicas(1, 60_000);
    const scaledDown = seconds(t1);
    process.stderr.write(`autoscaling: 2 publishers -> 2 replicas in ${scaledUp} s; publishers gone -> 1 replica in ${scaledDown} s\n`);

    // Autoscaling removed: the operator deletes the HPA it made and leaves the replicas where they are.
    await kubectl(['patch', 'rtmpserver', name, '-n', namespace, '--type=json', '-p', '[{"op":"remove","path":"/spec/autoscaling"}]']);
    await eventually('the HPA deleted', async () => ((await hpa()) === undefined ? true : undefined));
    expect(await replicas()).toEqual({ server: 1, statefulSet: 1 });
  });
});
