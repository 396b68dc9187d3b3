// The operator's memory with many RtmpServers, on the local control plane:
//   hack/cluster.sh up && eval "$(hack/cluster.sh env)"
//   [EVENTS=5000] node --conditions=source hack/operator-rss/main.ts [COUNT=500] [HEAP_MIB]
// The operator watches three more namespaces, where with EVENTS it first makes that
// many claims' Warning Events (1 KiB messages, about claims no RtmpServer owns):
// what anyone who may create Events, or leave claims unbound, can make it see.
// Makes COUNT RtmpServers of one replica each in a fresh namespace (sharing one
// pre-bound ReadWriteMany claim and requesting little CPU, so that 500 pods fit
// the two kwok nodes), runs the operator from source for that namespace (with
// --max-old-space-size=HEAP_MIB when given, as a container memory limit would
// bound its heap), waits until every RtmpServer is Ready, and prints the
// operator's resident memory (VmRSS, and VmHWM, its peak).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { warningEvent } from '../../operator/test/warning-event.ts';

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const count = Number(process.argv[2] ?? 500);
const heapMiB = process.argv[3];
const ns = `rss-${process.pid}`;
const eventCount = Number(process.env.EVENTS ?? 0);
// Watched with or without Events, so that runs with and without compare.
const eventNamespaces = [0, 1, 2].map((i) => `${ns}-events-${i}`);
// The pinned kubectl that `hack/cluster.sh env` points at.
const kubectlBin = join(process.env.FLUX_RTMPD_K8S_BIN ?? '', 'kubectl');

function kubectl(args: string[], input?: string): string {
  const r = spawnSync(kubectlBin, args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const freePort = () =>
  new Promise<number>((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });

const memory = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: Math.round(kb('VmRSS') / 1024), peakMiB: Math.round(kb('VmHWM') / 1024) };
};

kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(repo, 'crds/media.fluxiot.io_rtmpservers.yaml')]);
kubectl(['wait', '--for=condition=Established', 'crd/rtmpservers.media.fluxiot.io', '--timeout=60s']);
kubectl(['create', 'namespace', ns]);
for (const other of eventNamespaces) kubectl(['create', 'namespace', other]);
const message = `waiting for a volume to be created by the external provisioner: ${'x'.repeat(1024)}`.slice(0, 1024);
for (let first = 0; first < eventCount; first += 500) {
  const chunk = Array.from({ length: Math.min(500, eventCount - first) }, (_, k) => {
    const i = first + k;
    return warningEvent({
      namespace: eventNamespaces[i % eventNamespaces.length]!,
      name: `data-db-${i}.rss`,
      about: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: `data-db-${i}` },
      reason: 'ProvisioningFailed',
      message,
      component: 'persistentvolume-controller',
    });
  });
  kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: chunk }));
}
const items: object[] = [
  {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${ns}-shared` },
    spec: {
      capacity: { storage: '20Gi' },
      accessModes: ['ReadWriteMany'],
      storageClassName: 'rss-manual',
      hostPath: { path: `/tmp/flux-rtmpd-rss/${ns}` },
      claimRef: { namespace: ns, name: 'shared' },
    },
  },
  {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'shared', namespace: ns },
    spec: { accessModes: ['ReadWriteMany'], storageClassName: 'rss-manual', resources: { requests: { storage: '20Gi' } } },
  },
];
for (let i = 0; i < count; i++) {
  items.push({
    apiVersion: 'media.fluxiot.io/v1alpha1',
    kind: 'RtmpServer',
    metadata: { name: `s${i}`, namespace: ns },
    spec: {
      replicas: 1,
      resources: { requests: { cpu: '10m', memory: '32Mi' } },
      storage: { recordings: { existingClaim: 'shared' }, keyframes: { existingClaim: 'shared' } },
    },
  });
}

const health = await freePort();
const operator = spawn(
  process.execPath,
  [
    ...(heapMiB ? [`--max-old-space-size=${heapMiB}`] : []),
    '--conditions=source',
    join(repo, 'operator/src/main.ts'),
    `--namespaces=${[ns, ...eventNamespaces].join(',')}`,
    `--health-bind=127.0.0.1:${health}`,
    `--metrics-bind=127.0.0.1:${health}`,
    '--log-level=warn',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const started = Date.now();
try {
  kubectl(['apply', '--server-side', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  let ready = 0;
  while (ready < count) {
    if (Date.now() - started > 20 * 60_000) throw new Error(`only ${ready} of ${count} RtmpServers Ready after 20 min`);
    await new Promise((r) => setTimeout(r, 5000));
    const list = JSON.parse(kubectl(['get', 'rtmpservers', '-n', ns, '-o', 'json'])) as {
      items: { status?: { conditions?: { type: string; status: string }[] } }[];
    };
    ready = list.items.filter((s) => s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
    process.stderr.write(
      `${Math.round((Date.now() - started) / 1000)} s: ${ready} of ${count} Ready, operator ${JSON.stringify(memory(operator.pid!))}\n`,
    );
  }
  // Settled: a few more seconds of resyncs and status writes.
  await new Promise((r) => setTimeout(r, 15_000));
  const m = memory(operator.pid!);
  console.log(
    `${count} RtmpServers Ready${eventCount ? ` (and ${eventCount} Events)` : ''} in ${Math.round((Date.now() - started) / 1000)} s; operator VmRSS ${m.rssMiB} MiB, peak ${m.peakMiB} MiB`,
  );
} finally {
  operator.kill('SIGTERM');
  for (const namespace of [ns, ...eventNamespaces]) spawnSync(kubectlBin, ['delete', 'namespace', namespace, '--wait=false']);
  spawnSync(kubectlBin, ['delete', 'pv', `${ns}-shared`, '--wait=false']);
}
