// The rtmpd-operator chart rendered offline: helm lint, helm template with the
// defaults and with every optional feature on, parsed and checked; the values
// schema refusing bad values (the generated files are checked by make lint).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { leaderElectionRules, managerRules, metricsAuthRules, metricsReaderRules } from '../../operator/src/rbac.ts';
import { helm, type RunResult } from '../cluster/kube.ts';
import { allFeatures, chartDir, kubeVersion, one, packageVersion, repo, template, type K8sObject } from '../lib/chart.ts';

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; valueFrom?: unknown }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  securityContext: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: unknown[];
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  imagePullSecrets?: { name: string }[];
  volumes?: unknown[];
}
const podSpec = (d: K8sObject) => (d.spec as { template: { spec: PodSpec } }).template.spec;
const container = (d: K8sObject) => podSpec(d).containers[0] as Container;
const read = (p: string) => readFileSync(join(repo, p), 'utf8');
const dashboards = () => {
  try {
    return readdirSync(join(chartDir, 'files/dashboards')).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
};

describe('chart metadata', () => {
  it('carries the package version as version and appVersion', () => {
    const chart = parse(read('charts/rtmpd-operator/Chart.yaml')) as { version: string; appVersion: string };
    expect(chart.version).toBe(packageVersion);
    expect(chart.appVersion).toBe(packageVersion);
  });

  it('documents every value of values.yaml in values.schema.json', () => {
    const schema = JSON.parse(read('charts/rtmpd-operator/values.schema.json')) as { properties: Record<string, unknown> };
    const values = parse(read('charts/rtmpd-operator/values.yaml')) as Record<string, unknown>;
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(values).sort());
    const readme = read('charts/rtmpd-operator/README.md');
    for (const key of Object.keys(values)) expect(readme).toContain(`\`${key}`);
  });
});

describe('helm lint', () => {
  it('passes with the defaults and with every feature on (--strict)', async () => {
    const base = ['lint', chartDir, '--strict', '--kube-version', kubeVersion];
    const plain = await helm(base);
    expect(plain.stdout).toContain('0 chart(s) failed');
    const full = await helm([...base, ...allFeatures.filter((a) => a !== '--api-versions' && a !== 'monitoring.coreos.com/v1')]);
    expect(full.stdout).toContain('0 chart(s) failed');
  });
});

describe('helm template with the defaults', () => {
  it('renders the operator, its RBAC, the metrics Service and nothing optional', async () => {
    const objects = await template('rel', ['--namespace', 'rtmpd-system']);
    const kinds = objects.map((o) => o.kind).sort();
    const expected = ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'];
    if (dashboards().length > 0) expected.push('ConfigMap');
    expect(kinds).toEqual(expected.sort());
    for (const o of objects) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': 'rtmpd-operator',
        'app.kubernetes.io/instance': 'rel',
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/part-of': 'flux-rtmpd',
        'app.kubernetes.io/version': packageVersion,
        'helm.sh/chart': `rtmpd-operator-${packageVersion}`,
      });
      if (!o.kind.startsWith('Cluster')) expect(o.metadata.namespace).toBe('rtmpd-system');
    }
  });

  it('runs the operator image tagged with the package version, locked down', async () => {
    const objects = await template('rel', ['--namespace', 'rtmpd-system']);
    const deployment = one(objects, 'Deployment');
    const pod = podSpec(deployment);
    const c = container(deployment);
    expect(c.image).toBe(`ghcr.io/fluxiot/rtmpd-operator:${packageVersion}`);
    expect(pod.serviceAccountName).toBe(one(objects, 'ServiceAccount').metadata.name);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources?.limits).toMatchObject({ memory: expect.any(String) });
    const ports = Object.fromEntries(c.ports.map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ metrics: 8080, health: 8081 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.args).toEqual([
      '--leader-elect',
      '--metrics-bind=0.0.0.0:8080',
      '--metrics-auth=none',
      '--health-bind=0.0.0.0:8081',
      '--log-level=info',
      `--rtmpd-image=ghcr.io/fluxiot/rtmpd:${packageVersion}`,
      `--rtmpd-transcode-image=ghcr.io/fluxiot/rtmpd:${packageVersion}-transcode`,
    ]);
    expect(c.env?.map((e) => e.name)).toEqual(['POD_NAME', 'POD_NAMESPACE']);
  });

  it('grants exactly the operator’s own RBAC rules (operator/src/rbac.ts), bound to its ServiceAccount', async () => {
    const objects = await template('rel', ['--namespace', 'rtmpd-system']);
    const sa = one(objects, 'ServiceAccount').metadata.name;
    const clusterRole = one(objects, 'ClusterRole');
    expect(clusterRole.rules).toEqual(managerRules);
    const leader = one(objects, 'Role');
    expect(leader.metadata.name).toBe('rel-rtmpd-operator-leader-election');
    expect(leader.rules).toEqual(leaderElectionRules);
    for (const binding of [one(objects, 'ClusterRoleBinding'), one(objects, 'RoleBinding')]) {
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: 'rtmpd-system' }]);
    }
    expect((one(objects, 'ClusterRoleBinding').roleRef as { name: string }).name).toBe(clusterRole.metadata.name);
    // Nothing broader than the operator asked for: no wildcards; Secrets created (the fleet token's) and
    // read (those an RtmpServer names) where it watches, never changed, and not in its own namespace.
    for (const rule of [...managerRules, ...leaderElectionRules]) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
    }
    expect(managerRules.filter((r) => r.resources.includes('secrets'))).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create'] },
    ]);
    expect(leaderElectionRules.some((r) => r.resources.includes('secrets'))).toBe(false);
  });

  it('selects the operator pods with the metrics Service', async () => {
    const objects = await template('rel');
    const svc = one(objects, 'Service');
    const deployment = one(objects, 'Deployment');
    const selector = (deployment.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    expect((svc.spec as { selector: unknown }).selector).toEqual(selector);
    expect((svc.spec as { ports: unknown[] }).ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
  });

  it('renders no ServiceMonitor/PrometheusRule when enabled but the monitoring API is absent', async () => {
    const objects = await template('rel', ['--set', 'metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true']);
    expect(objects.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com'))).toEqual([]);
  });

  it('renders no ServiceMonitor/PrometheusRule when the API is present but they are not enabled', async () => {
    const objects = await template('rel', ['--api-versions', 'monitoring.coreos.com/v1']);
    expect(objects.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com'))).toEqual([]);
  });

  it('watching listed namespaces: a Role per namespace, nothing cluster-wide', async () => {
    const objects = await template('rel', ['--namespace', 'ops', '--set', 'watchNamespaces={media-a,media-b}']);
    expect(objects.filter((o) => o.kind.startsWith('Cluster'))).toEqual([]);
    const roles = objects.filter((o) => o.kind === 'Role' && o.metadata.name === 'rel-rtmpd-operator');
    expect(roles.map((r) => r.metadata.namespace)).toEqual(['media-a', 'media-b']);
    for (const r of roles) expect(r.rules).toEqual(managerRules);
    const bindings = objects.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === 'rel-rtmpd-operator');
    expect(bindings.map((b) => b.subjects)).toEqual(
      [0, 1].map(() => [{ kind: 'ServiceAccount', name: 'rel-rtmpd-operator', namespace: 'ops' }]),
    );
    expect(container(one(objects, 'Deployment')).args).toContain('--namespaces=media-a,media-b');
  });
});

describe('helm template with every feature on', () => {
  it('renders the ServiceMonitor and the RtmpServers from values', async () => {
    const objects = await template('rel', ['--namespace', 'rtmpd-system', ...allFeatures]);

    const sm = one(objects, 'ServiceMonitor');
    expect(sm.metadata.labels?.release).toBe('prometheus');
    const svc = one(objects, 'Service');
    expect((sm.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels).toEqual(
      Object.fromEntries(
        Object.entries(svc.metadata.labels ?? {}).filter(([k]) =>
          ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/component'].includes(k),
        ),
      ),
    );
    expect((sm.spec as { endpoints: unknown[] }).endpoints).toEqual([
      { port: 'metrics', path: '/metrics', honorLabels: true, interval: '30s' },
    ]);

    const server = one(objects, 'RtmpServer');
    expect(server.apiVersion).toBe('media.fluxiot.io/v1alpha1');
    expect(server.metadata).toMatchObject({ name: 'live', namespace: 'rtmpd-system' });
    expect(server.spec).toEqual({ replicas: 1, storage: { reclaimPolicy: 'Delete' } });

    const deployment = one(objects, 'Deployment');
    expect((deployment.spec as { replicas: number }).replicas).toBe(2);
    expect(podSpec(deployment).imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(container(deployment).args).toContain('--log-level=debug');
  });

  it('renders the PrometheusRule from files/alerts and the Grafana dashboard ConfigMap from files/dashboards', async () => {
    const objects = await template('rel', ['--namespace', 'rtmpd-system', ...allFeatures]);
    const alerts = readdirSync(join(chartDir, 'files')).includes('alerts') ? readdirSync(join(chartDir, 'files/alerts')) : [];
    expect(alerts.length, 'charts/rtmpd-operator/files/alerts/ holds no alert rules yet').toBeGreaterThan(0);
    const rule = one(objects, 'PrometheusRule');
    expect(rule.metadata.labels?.release).toBe('prometheus');
    const groups = (rule.spec as { groups: { name: string; rules: { alert?: string; expr: string }[] }[] }).groups;
    expect(groups.length).toBeGreaterThan(0);
    for (const g of groups) {
      expect(g.rules.length).toBeGreaterThan(0);
      for (const r of g.rules) expect(r.expr).toBeTruthy();
    }

    const files = dashboards();
    expect(files.length, 'charts/rtmpd-operator/files/dashboards/ holds no dashboard yet').toBeGreaterThan(0);
    const cm = one(objects, 'ConfigMap');
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    const data = cm.data as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(files.map((f) => basename(f)).sort());
    for (const f of files)
      expect(JSON.parse(data[f] as string)).toEqual(JSON.parse(readFileSync(join(chartDir, 'files/dashboards', f), 'utf8')));
  });

  it('honours image.tag over the appVersion, for the operator and for the rtmpd images it runs (the transcode one derived from rtmpdImage)', async () => {
    const objects = await template('rel', [
      '--set',
      'image.repository=registry.local/op,image.tag=dev,rtmpdImage.repository=registry.local/rtmpd',
    ]);
    expect(container(one(objects, 'Deployment')).image).toBe('registry.local/op:dev');
    expect(container(one(objects, 'Deployment')).args).toContain(`--rtmpd-image=registry.local/rtmpd:${packageVersion}`);
    expect(container(one(objects, 'Deployment')).args).toContain(
      `--rtmpd-transcode-image=registry.local/rtmpd:${packageVersion}-transcode`,
    );
    const pinned = await template('rel', ['--set', 'rtmpdImage.tag=1.2.3']);
    expect(container(one(pinned, 'Deployment')).args).toContain('--rtmpd-transcode-image=ghcr.io/fluxiot/rtmpd:1.2.3-transcode');
    const own = await template('rel', ['--set', 'rtmpdTranscodeImage.repository=registry.local/ffmpeg-rtmpd,rtmpdTranscodeImage.tag=v7']);
    expect(container(one(own, 'Deployment')).args).toContain('--rtmpd-transcode-image=registry.local/ffmpeg-rtmpd:v7');
  });
});

describe('the operator’s availability and exposure', () => {
  it('keeps one operator pod through a drain when there are several (a PodDisruptionBudget), none at one replica', async () => {
    const objects = await template('rel', ['--set', 'replicaCount=2']);
    const pdb = one(objects, 'PodDisruptionBudget');
    const selector = (one(objects, 'Deployment').spec as { selector: unknown }).selector;
    expect(pdb.spec).toEqual({ minAvailable: 1, selector });
    expect((await template('rel', [])).some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
  });

  it('admits only the health port and, from metricsFrom, /metrics through the optional NetworkPolicy', async () => {
    expect((await template('rel', [])).some((o) => o.kind === 'NetworkPolicy')).toBe(false);
    const objects = await template('rel', ['--namespace', 'rtmpd-system', ...allFeatures]);
    const policy = one(objects, 'NetworkPolicy');
    const selector = (one(objects, 'Deployment').spec as { selector: { matchLabels: unknown } }).selector.matchLabels;
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ port: 'health', protocol: 'TCP' }] },
        {
          from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
          ports: [{ port: 'metrics', protocol: 'TCP' }],
        },
      ],
    });
  });

  it('serves /metrics on localhost only when asked: no port, Service or ServiceMonitor', async () => {
    const objects = await template('rel', [...allFeatures, '--set', 'metrics.localhostOnly=true']);
    const c = container(one(objects, 'Deployment'));
    expect(c.args).toContain('--metrics-bind=127.0.0.1:8080');
    expect(c.ports.map((p) => p.name)).toEqual(['health']);
    expect(objects.filter((o) => ['Service', 'ServiceMonitor'].includes(o.kind))).toEqual([]);
    expect((one(objects, 'NetworkPolicy').spec as { ingress: unknown[] }).ingress).toHaveLength(1);
  });

  it('serves /metrics behind TokenReview and SubjectAccessReview when asked: the reviews granted, a reader role, the token sent', async () => {
    const objects = await template('rel', [...allFeatures, '--set', 'metrics.auth=kubernetes,watchNamespaces={media}']);
    expect(container(one(objects, 'Deployment')).args).toContain('--metrics-auth=kubernetes');
    // The reviews are cluster-scoped, so they are granted cluster-wide even when only listed namespaces are watched.
    expect(one(objects, 'ClusterRole', 'rel-rtmpd-operator-metrics-auth').rules).toEqual(metricsAuthRules);
    const binding = one(objects, 'ClusterRoleBinding', 'rel-rtmpd-operator-metrics-auth');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'rel-rtmpd-operator', namespace: 'default' }]);
    expect(one(objects, 'ClusterRole', 'rel-rtmpd-operator-metrics-reader').rules).toEqual(metricsReaderRules);
    const endpoint = (one(objects, 'ServiceMonitor').spec as { endpoints: Record<string, unknown>[] }).endpoints[0];
    expect(endpoint?.bearerTokenFile).toBe('/var/run/secrets/kubernetes.io/serviceaccount/token');
    // The token goes over HTTPS only; the operator's self-signed certificate is not verified.
    expect(endpoint).toMatchObject({ scheme: 'https', tlsConfig: { insecureSkipVerify: true } });
    expect(container(one(objects, 'Deployment')).args.some((a) => a.startsWith('--metrics-cert-dir'))).toBe(false);
    // With a certificate Secret: mounted for the operator, and its CA verified by the ServiceMonitor for the Service's name.
    const withCert = await template('rel', [...allFeatures, '--set', 'metrics.auth=kubernetes,metrics.certSecret=operator-metrics-tls']);
    const operator = one(withCert, 'Deployment');
    expect(container(operator).args).toContain('--metrics-cert-dir=/etc/rtmpd-operator/metrics-tls');
    expect(container(operator).volumeMounts).toContainEqual({
      name: 'metrics-tls',
      mountPath: '/etc/rtmpd-operator/metrics-tls',
      readOnly: true,
    });
    expect(podSpec(operator).volumes).toContainEqual({ name: 'metrics-tls', secret: { secretName: 'operator-metrics-tls' } });
    expect((one(withCert, 'ServiceMonitor').spec as { endpoints: Record<string, unknown>[] }).endpoints[0]).toMatchObject({
      scheme: 'https',
      tlsConfig: { ca: { secret: { name: 'operator-metrics-tls', key: 'ca.crt' } }, serverName: 'rel-rtmpd-operator-metrics.default.svc' },
    });
    // Off by default: nothing of it rendered.
    const plain = await template('rel', allFeatures);
    expect(plain.filter((o) => o.metadata.name.includes('metrics-auth') || o.metadata.name.includes('metrics-reader'))).toEqual([]);
    expect((one(plain, 'ServiceMonitor').spec as { endpoints: Record<string, unknown>[] }).endpoints[0]?.bearerTokenFile).toBeUndefined();
    expect((one(plain, 'ServiceMonitor').spec as { endpoints: Record<string, unknown>[] }).endpoints[0]?.scheme).toBeUndefined();
  });
});

describe('every value the schema allows', () => {
  // Each helm template is a process of its own: three at a time took this file from
  // 189-205 s to 82-100 s on a loaded 2-core machine, and no more than three leave
  // the tests running beside it their share of the cores.
  const renderEach = async <T>(items: readonly T[], setting: (item: T) => string[]): Promise<[T, RunResult][]> => {
    const results: [T, RunResult][] = [];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < items.length; i = next++) {
        const item = items[i] as T;
        const args = ['template', 'rel', chartDir, '--kube-version', kubeVersion, ...allFeatures, ...setting(item)];
        results[i] = [item, await helm(args, { allowFailure: true })];
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    return results;
  };
  const paths = (o: Record<string, unknown>, prefix = ''): string[] =>
    Object.entries(o).flatMap(([k, v]) => {
      const path = prefix ? `${prefix}.${k}` : k;
      return [path, ...(v && typeof v === 'object' && !Array.isArray(v) ? paths(v as Record<string, unknown>, path) : [])];
    });

  it('renders, or is refused by the schema naming it, with any value unset (--set <value>=null drops it)', async () => {
    const values = parse(read('charts/rtmpd-operator/values.yaml')) as Record<string, unknown>;
    const rendered: string[] = [];
    const results = await renderEach(paths(values), (path) => ['--set', `${path}=null`]);
    for (const [path, r] of results) {
      if (r.code === 0) {
        rendered.push(path);
        continue;
      }
      // a clear refusal, not a template failing on a nil value
      expect(r.stderr, path).toMatch(/values don't meet the specifications of the schema/);
      expect(r.stderr, path).toContain(`missing property '${path.split('.').at(-1)}'`);
    }
    // watchNamespaces=null used to crash NOTES.txt: unset, it watches every namespace
    expect(rendered).toContain('watchNamespaces');
    const objects = await template('rel', ['--set', 'watchNamespaces=null']);
    expect(objects.some((o) => o.kind === 'ClusterRole')).toBe(true);
    expect(container(one(objects, 'Deployment')).args.some((a) => a.startsWith('--namespaces'))).toBe(false);
  });

  it('renders with every enum value, both booleans and the integer bounds of the schema', async () => {
    interface Node {
      $ref?: string;
      type?: string;
      enum?: unknown[];
      minimum?: number;
      maximum?: number;
      properties?: Record<string, Node>;
    }
    const schema = JSON.parse(read('charts/rtmpd-operator/values.schema.json')) as Node & { definitions: Record<string, Node> };
    const resolve = (n: Node): Node => (n.$ref ? { ...schema.definitions[n.$ref.split('/').at(-1)!], ...n, $ref: undefined } : n);
    const edges = (n: Node, path: string): [string, unknown][] => {
      const node = resolve(n);
      if (node.properties) return Object.entries(node.properties).flatMap(([k, child]) => edges(child, path ? `${path}.${k}` : k));
      if (node.enum) return node.enum.map((v) => [path, v]);
      if (node.type === 'boolean')
        return [
          [path, true],
          [path, false],
        ];
      if (node.type === 'integer') return [node.minimum, node.maximum].filter((v) => v !== undefined).map((v) => [path, v]);
      return [];
    };
    const cases = edges(schema, '');
    expect(cases.length).toBeGreaterThan(20);
    const settings = cases.map(([path, value]) => ({ path, setting: `${path}=${JSON.stringify(value)}` }));
    for (const [{ path, setting }, r] of await renderEach(settings, ({ setting }) => ['--set-json', setting])) {
      // it renders, or the chart's own check refuses it with a message naming it
      // (serviceAccount.create=false needs a name; two operators need leader election)
      if (r.code !== 0) expect(r.stderr, setting).toMatch(new RegExp(`execution error at .*: .*${path.replaceAll('.', '\\.')}`));
      else expect(r.stdout, setting).toContain('kind: Deployment');
    }
  });
});

describe('values.schema.json', () => {
  const refused = async (args: string[]) => {
    const r = await helm(['template', 'rel', chartDir, '--kube-version', kubeVersion, ...args], { allowFailure: true });
    expect(r.code).not.toBe(0);
    return r.stderr;
  };

  it('refuses a wrong type with the value’s path', async () => {
    expect(await refused(['--set', 'replicaCount=two'])).toMatch(/replicaCount.*want integer|replicaCount.*integer/);
  });

  it('refuses an unknown key (a typo does not pass silently)', async () => {
    expect(await refused(['--set', 'leaderElection.enable=true'])).toMatch(/additional propert.*enable/);
  });

  it('refuses values out of range and bad enums', async () => {
    expect(await refused(['--set', 'metrics.port=70000'])).toMatch(/metrics\/port/);
    expect(await refused(['--set', 'image.pullPolicy=Sometimes'])).toMatch(/pullPolicy/);
    expect(await refused(['--set', 'watchNamespaces={Bad_NS}'])).toMatch(/watchNamespaces/);
    expect(await refused(['--set-json', 'rtmpServers=[{"name":"Live"}]'])).toMatch(/rtmpServers\/0\/name/);
  });

  it('refuses several operators without leader election', async () => {
    expect(await refused(['--set', 'replicaCount=2,leaderElection.enabled=false'])).toMatch(/leaderElection\.enabled/);
  });

  it('replaces the operator without leader election by stopping the old one first (two versions never reconcile at once)', async () => {
    const strategy = async (args: string[]) => (one(await template('rel', args), 'Deployment').spec as { strategy?: object }).strategy;
    expect(await strategy(['--set', 'leaderElection.enabled=false'])).toEqual({ type: 'Recreate' });
    // with it, the new pod waits as a standby until the old one releases the Lease
    expect(await strategy([])).toBeUndefined();
  });

  it('passes the flags the operator parses (operator/src/flags.ts)', async () => {
    const { parseFlags } = await import('../../operator/src/flags.ts');
    for (const args of [[], ['--set', 'leaderElection.enabled=false,watchNamespaces={a,b},logLevel=debug']]) {
      const c = container(one(await template('rel', args), 'Deployment'));
      const { flags } = parseFlags(c.args, {});
      expect(flags.metricsBind).toBe('0.0.0.0:8080');
      expect(flags.healthBind).toBe('0.0.0.0:8081');
      expect(flags.leaderElect).toBe(args.length === 0);
      expect(flags.namespaces).toEqual(args.length === 0 ? [] : ['a', 'b']);
      expect(flags.rtmpdImage).toBe(`ghcr.io/fluxiot/rtmpd:${packageVersion}`);
      expect(flags.rtmpdTranscodeImage).toBe(`ghcr.io/fluxiot/rtmpd:${packageVersion}-transcode`);
    }
  });
});

describe('helm template with the pod placement values', () => {
  it("puts podLabels, podAnnotations, priorityClassName, nodeSelector, tolerations and affinity on the operator's pods", async () => {
    const affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } };
    const tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'control', effect: 'NoSchedule' }];
    const deployment = one(
      await template('rel', [
        ...allFeatures,
        '--set',
        'priorityClassName=system-cluster-critical,nodeSelector.pool=control',
        '--set-json',
        `tolerations=${JSON.stringify(tolerations)}`,
        '--set-json',
        `affinity=${JSON.stringify(affinity)}`,
      ]),
      'Deployment',
    );
    const { metadata, spec } = (deployment.spec as { template: { metadata: K8sObject['metadata']; spec: Record<string, unknown> } })
      .template;
    expect(metadata.labels).toMatchObject({ tier: 'control' });
    expect(metadata.annotations).toMatchObject({ 'example.com/team': 'media' });
    expect(spec).toMatchObject({ priorityClassName: 'system-cluster-critical', nodeSelector: { pool: 'control' }, tolerations, affinity });
  });
});

describe('values.schema.json bounds', () => {
  it('refuses more than 10 operator pods', async () => {
    const r = await helm(['template', 'rel', chartDir, '--kube-version', kubeVersion, '--set', 'replicaCount=11'], { allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/replicaCount.*(maximum|less than or equal)/);
  });
});

describe('helm template and the RBAC rules', () => {
  it('stamps the pod template with the digest of files/rbac/role.yaml, so new rules roll the operator pods', async () => {
    const digest = createHash('sha256').update(read('charts/rtmpd-operator/files/rbac/role.yaml')).digest('hex');
    const pod = (one(await template('rel', []), 'Deployment').spec as { template: { metadata: K8sObject['metadata'] } }).template;
    expect(pod.metadata.annotations?.['checksum/rbac']).toBe(digest);
  });
});
