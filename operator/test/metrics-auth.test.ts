// /metrics behind the API server's authentication and authorization
// (--metrics-auth=kubernetes), against the real API server: a ServiceAccount
// token allowed `get /metrics` reads it, one that is not gets 403, no token
// or a token the API server does not accept gets 401; /healthz stays open.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from '../../e2e/cluster/kube.ts';
import { metricsAuthRole, metricsReaderRole } from '../src/rbac.ts';
import { apply, startOperators, suffix, type OperatorFixture } from './harness.ts';

const id = suffix();
const ns = `rtmp-metrics-${id}`;
const system = `rtmp-op-${id}`;
const authRole = `rtmpd-operator-metrics-auth-${id}`;
const readerRole = `rtmpd-operator-metrics-reader-${id}`;
let fixture: OperatorFixture;
let metrics: string;

const clusterBinding = (name: string, role: string, namespace: string, sa: string) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ kind: 'ServiceAccount', name: sa, namespace }],
});

const token = async (sa: string) => (await kubectl(['create', 'token', sa, '-n', ns, '--duration=10m'])).stdout.trim();
const scrape = (auth?: string) => fetch(`${metrics}/metrics`, { headers: auth ? { authorization: auth } : {} });

beforeAll(async () => {
  await kubectl(['create', 'namespace', ns]);
  fixture = await startOperators({ id, watched: [ns], args: ['--metrics-auth=kubernetes'] });
  metrics = fixture.operators[0]!.metrics;
  await apply([
    // The generated roles (charts/rtmpd-operator/files/rbac/role.yaml), renamed per run.
    { ...(metricsAuthRole() as Record<string, unknown>), metadata: { name: authRole } },
    { ...(metricsReaderRole() as Record<string, unknown>), metadata: { name: readerRole } },
    clusterBinding(authRole, authRole, system, 'rtmpd-operator'),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'prometheus', namespace: ns } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'stranger', namespace: ns } },
    clusterBinding(readerRole, readerRole, ns, 'prometheus'),
  ]);
}, 120_000);

afterAll(async () => {
  await fixture?.teardown();
  await kubectl(['delete', 'clusterrolebinding', authRole, readerRole, '--ignore-not-found'], { allowFailure: true });
  await kubectl(['delete', 'clusterrole', authRole, readerRole, '--ignore-not-found'], { allowFailure: true });
}, 60_000);

describe('--metrics-auth=kubernetes', () => {
  it('serves /metrics to a ServiceAccount allowed get on /metrics', async () => {
    const res = await scrape(`Bearer ${await token('prometheus')}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('controller_runtime_reconcile_total');
  });

  it('refuses a ServiceAccount without that permission with 403 and says what is missing', async () => {
    const res = await scrape(`Bearer ${await token('stranger')}`);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('www-authenticate')).toBeNull();
    const body = (await res.json()) as { error: string; code: number };
    expect(body.code).toBe(403);
    expect(body.error).toContain(`system:serviceaccount:${ns}:stranger may not get /metrics`);
  });

  it('refuses a request without a token, or with one the API server does not accept, with 401', async () => {
    const none = await scrape();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd-operator"');
    expect(((await none.json()) as { error: string }).error).toMatch(/bearer token is required/);
    const forged = await scrape('Bearer not-a-token');
    expect(forged.status).toBe(401);
    // RFC 6750: a token was presented, and the API server did not accept it
    expect(forged.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd-operator", error="invalid_token"');
    expect(((await forged.json()) as { error: string }).error).toMatch(/not accepted by the API server/);
  });

  it('leaves the health endpoints open (the kubelet probes them without a token)', async () => {
    expect((await fetch(`${metrics}/healthz`)).status).toBe(200);
  });
});
