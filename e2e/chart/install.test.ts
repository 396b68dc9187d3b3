// The rtmpd-operator chart against the real API server of the local control
// plane: every rendered manifest accepted by `kubectl apply --dry-run=server`
// (and every RtmpServer the README and examples/ show by `kubectl create
// --dry-run=server`), then helm install → upgrade → uninstall with the operator Deployment becoming
// Available on kwok nodes, and the RBAC it grants checked with `kubectl auth can-i`.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shownRtmpServers } from '../../hack/docs/examples.ts';
import { crdFileName } from '../../operator/src/api/crd.ts';
import { eventually, helm, kubectl, kubectlJson, waitEstablished, withClusterLock } from '../cluster/kube.ts';
import { allFeatures, chartDir, one, packageVersion, parseManifests, template } from '../lib/chart.ts';

const suffix = randomBytes(3).toString('hex');
const ns = `chart-e2e-${suffix}`;
const watched = `chart-e2e-${suffix}-media`;
const release = `rel-${suffix}`;
const fullname = `${release}-rtmpd-operator`;
const monitoringCrds = join(import.meta.dirname, 'testdata/monitoring-crds.yaml');

interface Deployment {
  spec: { template: { spec: { containers: { args: string[] }[] } } };
  status: { conditions?: { type: string; status: string }[]; availableReplicas?: number };
}

const available = (d: Deployment) => d.status.conditions?.find((c) => c.type === 'Available')?.status === 'True';

/** Applies the chart's CRD (as `helm install` would) and waits until it is served. */
async function ensureCrd(): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=chart-e2e', '-f', join(chartDir, 'crds', crdFileName)]);
  await waitEstablished(['crd/rtmpservers.media.fluxiot.io']);
}

beforeAll(async () => {
  await kubectl(['create', 'namespace', ns]);
  await kubectl(['create', 'namespace', watched]);
  await ensureCrd();
});

afterAll(async () => {
  await helm(['uninstall', release, '-n', ns, '--ignore-not-found'], { allowFailure: true });
  await kubectl(['delete', 'namespace', ns, watched, '--wait=false', '--ignore-not-found'], { allowFailure: true });
});

describe('every rendered manifest is accepted by the API server (kubectl apply --dry-run=server)', () => {
  const dryRun = async (args: string[]) => {
    const objects = await template(release, ['--namespace', ns, ...args]);
    const input = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
    const { stdout } = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input });
    for (const o of objects) expect(stdout).toContain(`${o.kind.toLowerCase()}`);
    return objects;
  };

  it('with the defaults', async () => {
    const objects = await dryRun([]);
    expect(objects.length).toBeGreaterThanOrEqual(7);
  });

  it('watching a list of namespaces', async () => {
    const objects = await dryRun(['--set', `watchNamespaces={${watched}}`]);
    expect(objects.some((o) => o.kind === 'Role' && o.metadata.namespace === watched)).toBe(true);
  });

  it('with every feature on, the monitoring CRDs installed as stand-ins', async () => {
    // The Prometheus Operator CRDs are not part of the cluster: install minimal
    // copies for this test only (and remove them after, when we created them),
    // so the ServiceMonitor and PrometheusRule reach the API server too.
    // Cluster-wide: taken in turn with the operator suite, which watches for them appearing.
    await withClusterLock('monitoring-crds', async () => {
      const existing = await kubectl(['get', 'crd', 'servicemonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com'], {
        allowFailure: true,
      });
      const created = existing.code !== 0;
      if (created) {
        await kubectl(['apply', '--server-side', '-f', monitoringCrds]);
        await waitEstablished(['-f', monitoringCrds]);
      }
      try {
        const objects = await dryRun(allFeatures);
        const kinds = new Set(objects.map((o) => o.kind));
        expect(kinds).toContain('ServiceMonitor');
        expect(kinds).toContain('RtmpServer');
      } finally {
        if (created)
          await kubectl(['delete', '-f', monitoringCrds, '--ignore-not-found', '--wait=true', '--timeout=60s'], { allowFailure: true });
      }
    });
  });

  it("accepts every RtmpServer the README and examples/ show (the CRD's schema and CEL rules)", async () => {
    const shown = shownRtmpServers();
    expect(shown.length).toBeGreaterThanOrEqual(6);
    const items = shown.map(({ server }) => ({ ...server, metadata: { ...server.metadata, namespace: ns } }));
    const r = await kubectl(['create', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
      allowFailure: true,
    });
    // An error names the RtmpServer: its own name, or readme-<n> for the README's nth `spec:` fragment.
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('rejects what the CRD rejects: an RtmpServer from values with an invalid spec', async () => {
    const objects = await template(release, ['--namespace', ns, '--set-json', 'rtmpServers=[{"name":"bad","spec":{"replicas":-1}}]']);
    const server = one(objects, 'RtmpServer');
    const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify(server), allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec\.replicas/);
  });
});

describe('helm install, upgrade, uninstall on the local control plane', () => {
  it('installs: the operator Deployment becomes Available on kwok nodes', async () => {
    const r = await helm(['install', release, chartDir, '-n', ns, '--wait', '--timeout', '3m'], { timeoutMs: 200_000 });
    expect(r.stdout).toContain('STATUS: deployed');
    expect(r.stdout).toContain('rtmp://'); // NOTES.txt tells how to push
    // ... with the stream key's secret, to the RtmpServer it shows, which the API server accepts.
    expect(r.stdout).toContain('/live/mykey?secret=$SECRET');
    const notesServer = /cat <<'YAML'[^\n]*\n([\s\S]*?)\n {2}YAML\n/.exec(r.stdout)?.[1]?.replace(/^ {2}/gm, '');
    expect(notesServer).toContain('method: keys');
    await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], { input: notesServer });
    const d = await kubectlJson<Deployment>(['get', 'deployment', fullname, '-n', ns]);
    expect(available(d)).toBe(true);
    const pods = await kubectlJson<{ items: { spec: { nodeName?: string; containers: { image: string }[] } }[] }>([
      'get',
      'pods',
      '-n',
      ns,
      '-l',
      `app.kubernetes.io/instance=${release}`,
    ]);
    expect(pods.items.length).toBe(1);
    expect(pods.items[0]?.spec.nodeName).toMatch(/^kwok-node-/);
    expect(pods.items[0]?.spec.containers[0]?.image).toBe(`ghcr.io/fluxiot/rtmpd-operator:${packageVersion}`);
  });

  it('grants the ServiceAccount what the operator needs and nothing more (kubectl auth can-i)', async () => {
    const as = `system:serviceaccount:${ns}:${fullname}`;
    const can = async (...args: string[]) => (await kubectl(['auth', 'can-i', '--as', as, ...args], { allowFailure: true })).stdout.trim();
    expect(await can('watch', 'rtmpservers.media.fluxiot.io', '-A')).toBe('yes');
    expect(await can('patch', 'rtmpservers.media.fluxiot.io', '--subresource=status', '-n', watched)).toBe('yes');
    expect(await can('create', 'statefulsets.apps', '-n', watched)).toBe('yes');
    expect(await can('patch', 'persistentvolumeclaims', '-n', watched)).toBe('yes');
    expect(await can('update', 'leases.coordination.k8s.io', '-n', ns)).toBe('yes');
    // where it watches, the rtmpd pods' Lease rules, which it must hold to grant them in their Role
    expect(await can('update', 'leases.coordination.k8s.io', '-n', watched)).toBe('yes');
    expect(await can('create', 'roles.rbac.authorization.k8s.io', '-n', watched)).toBe('yes');
    expect(await can('escalate', 'roles.rbac.authorization.k8s.io', '-n', watched)).toBe('no');
    // Secrets: created (the fleet token's) and read (those an RtmpServer names, checked and watched), never changed.
    for (const verb of ['create', 'get', 'list', 'watch']) expect(await can(verb, 'secrets', '-n', watched), verb).toBe('yes');
    for (const verb of ['update', 'patch', 'delete']) expect(await can(verb, 'secrets', '-n', watched), verb).toBe('no');
    expect(await can('delete', 'statefulsets.apps', '-n', watched)).toBe('no');
    // operator 0.1.0's Deployments: removed by the move to a StatefulSet, never made
    expect(await can('delete', 'deployments.apps', '-n', watched)).toBe('yes');
    expect(await can('create', 'deployments.apps', '-n', watched)).toBe('no');
    expect(await can('create', 'pods', '-n', watched)).toBe('no');
  });

  it('upgrades: narrows RBAC to the watched namespace, rolls the pods, creates an RtmpServer from values', async () => {
    const r = await helm(
      [
        'upgrade',
        release,
        chartDir,
        '-n',
        ns,
        '--wait',
        '--timeout',
        '3m',
        '--set',
        `watchNamespaces={${watched}}`,
        '--set',
        'logLevel=debug',
        '--set-json',
        `rtmpServers=[{"name":"live","namespace":"${watched}","spec":{"storage":{"reclaimPolicy":"Delete"}}}]`,
      ],
      { timeoutMs: 200_000 },
    );
    expect(r.stdout).toContain('REVISION: 2');
    const d = await kubectlJson<Deployment>(['get', 'deployment', fullname, '-n', ns]);
    expect(d.spec.template.spec.containers[0]?.args).toEqual(expect.arrayContaining([`--namespaces=${watched}`, '--log-level=debug']));
    await kubectl(['rollout', 'status', `deployment/${fullname}`, '-n', ns, '--timeout=120s'], { timeoutMs: 130_000 });
    expect(available(await kubectlJson<Deployment>(['get', 'deployment', fullname, '-n', ns]))).toBe(true);

    const clusterRole = await kubectl(['get', 'clusterrole', fullname], { allowFailure: true });
    expect(clusterRole.code).not.toBe(0);
    expect(clusterRole.stderr).toContain('(NotFound)');
    const role = await kubectlJson<{ rules: unknown[] }>(['get', 'role', fullname, '-n', watched]);
    expect(role.rules.length).toBeGreaterThan(0);
    const as = `system:serviceaccount:${ns}:${fullname}`;
    const can = async (...args: string[]) => (await kubectl(['auth', 'can-i', '--as', as, ...args], { allowFailure: true })).stdout.trim();
    expect(await can('list', 'rtmpservers.media.fluxiot.io', '-n', watched)).toBe('yes');
    expect(await can('list', 'rtmpservers.media.fluxiot.io', '-n', 'default')).toBe('no');

    const server = await kubectlJson<{ spec: { storage: { reclaimPolicy: string }; replicas: number } }>([
      'get',
      'rtmpserver',
      'live',
      '-n',
      watched,
    ]);
    expect(server.spec.storage.reclaimPolicy).toBe('Delete');
    expect(server.spec.replicas).toBe(1); // the CRD's default filled in by the API server
  });

  it('uninstalls: every object of the release is gone, the CRD stays', async () => {
    const manifest = parseManifests((await helm(['get', 'manifest', release, '-n', ns])).stdout);
    await helm(['uninstall', release, '-n', ns, '--wait', '--timeout', '2m'], { timeoutMs: 150_000 });
    await eventually('the release objects to be deleted', async () => {
      for (const o of manifest) {
        const args = [
          'get',
          `${o.kind}.${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}`.replace(/\.$/, ''),
          o.metadata.name,
        ];
        if (o.metadata.namespace) args.push('-n', o.metadata.namespace);
        const r = await kubectl(args, { allowFailure: true });
        if (r.code === 0) return undefined;
        // Only NotFound says it is gone: any other failure (a type kubectl cannot resolve) would pass unchecked.
        if (!r.stderr.includes('(NotFound)')) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
      }
      return true;
    });
    const crd = await kubectl(['get', 'crd', 'rtmpservers.media.fluxiot.io'], { allowFailure: true });
    expect(crd.code).toBe(0);
    expect(readFileSync(join(chartDir, 'crds', crdFileName), 'utf8')).toContain('rtmpservers.media.fluxiot.io');
  });
});
