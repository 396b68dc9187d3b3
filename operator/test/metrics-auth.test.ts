// /metrics behind the API server's authentication and authorization
// (--metrics-auth=kubernetes), against the real API server: a ServiceAccount
// token allowed `get /metrics` reads it, one that is not gets 403, no token
// or a token the API server does not accept gets 401; /healthz stays open.
// All of it over HTTPS with a certificate (made here by openssl) laid out as
// the kubelet mounts a kubernetes.io/tls Secret, which the scrapes verify, and
// which is served renewed, by the kubelet's `..data` swap, without a restart.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, kubectl, run } from '../../e2e/cluster/kube.ts';
import type { TlsPair } from '../src/metrics-tls.ts';
import { metricsAuthRole, metricsReaderRole } from '../src/rbac.ts';
import { apply, startOperators, suffix, type OperatorFixture } from './harness.ts';
import { mountSecret, type MountedSecret } from './mounted-secret.ts';

const id = suffix();
const ns = `rtmp-metrics-${id}`;
const system = `rtmp-op-${id}`;
const authRole = `rtmpd-operator-metrics-auth-${id}`;
const readerRole = `rtmpd-operator-metrics-reader-${id}`;
let fixture: OperatorFixture;
let metrics: string;
let certDir: string;
let secret: MountedSecret;
let ca: string;

const clusterBinding = (name: string, role: string, namespace: string, sa: string) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ kind: 'ServiceAccount', name: sa, namespace }],
});

/** openssl's arguments for an EC P-256 self-signed certificate valid for a day. */
const SELF_SIGNED = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'];
/** A self-signed certificate for `subject`; `args` say where the key and certificate go (stdout without -out). */
const selfSigned = (subject: string, args: string[]) => run('openssl', [...SELF_SIGNED, '-subj', subject, ...args]);

/** A self-signed certificate for the metrics address and its key, as a kubernetes.io/tls Secret holds them. */
async function servingPair(subject: string): Promise<TlsPair> {
  const dir = await mkdtemp(join(tmpdir(), 'rtmpd-operator-metrics-pair-'));
  try {
    const [cert, key] = [join(dir, 'tls.crt'), join(dir, 'tls.key')];
    await selfSigned(subject, ['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert]);
    return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const token = async (sa: string) => (await kubectl(['create', 'token', sa, '-n', ns, '--duration=10m'])).stdout.trim();
interface Scraped {
  status: number;
  headers: Headers;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/** A GET over HTTPS on a new connection that trusts only the mounted certificate, as Prometheus with its tlsConfig. */
const get = (path: string, auth?: string, trusted = ca) =>
  new Promise<Scraped>((resolve, reject) => {
    const req = request(`${metrics}${path}`, { ca: trusted, agent: false, headers: auth ? { authorization: auth } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: new Headers(Object.entries(res.headers).map(([k, v]) => [k, String(v)])),
          text: async () => body,
          json: async () => JSON.parse(body) as unknown,
        }),
      );
    });
    req.on('error', reject).end();
  });
const scrape = (auth?: string) => get('/metrics', auth);

beforeAll(async () => {
  await kubectl(['create', 'namespace', ns]);
  certDir = await mkdtemp(join(tmpdir(), 'rtmpd-operator-metrics-tls-'));
  const pair = await servingPair('/CN=rtmpd-operator-metrics');
  secret = await mountSecret(certDir, pair);
  ca = pair.cert;
  fixture = await startOperators({ id, watched: [ns], args: ['--metrics-auth=kubernetes', `--metrics-cert-dir=${certDir}`] });
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
  await rm(certDir, { recursive: true, force: true });
}, 60_000);

describe('--metrics-auth=kubernetes', () => {
  it('serves /metrics over HTTPS only, with the mounted certificate, which a client that trusts another refuses', async () => {
    expect(metrics).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // plain HTTP gets no answer from the TLS port
    const plain = await fetch(`${metrics.replace('https:', 'http:')}/metrics`).then(
      (r) => r.status,
      (err: unknown) => String(err),
    );
    expect(plain).not.toBe(200);
    const other = (await selfSigned('/CN=other', ['-keyout', '/dev/null'])).stdout;
    await expect(get('/metrics', undefined, other)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    // curl, as another real client, with the CA
    const curl = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--cacert',
      join(certDir, 'tls.crt'),
      `${metrics}/metrics`,
    ]);
    expect(curl.stdout).toBe('401');
  });

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
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('forbidden');
    expect(error.message).toContain(`system:serviceaccount:${ns}:stranger may not get /metrics`);
  });

  it('refuses a request without a token, or with one the API server does not accept, with 401', async () => {
    const none = await scrape();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd-operator"');
    expect(((await none.json()) as { error: { code: string; message: string } }).error).toEqual({
      code: 'unauthorized',
      message: expect.stringMatching(/bearer token is required/) as string,
    });
    const forged = await scrape('Bearer not-a-token');
    expect(forged.status).toBe(401);
    // RFC 6750: a token was presented, and the API server did not accept it
    expect(forged.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd-operator", error="invalid_token"');
    expect(((await forged.json()) as { error: { code: string; message: string } }).error).toEqual({
      code: 'bad_token',
      message: expect.stringMatching(/not accepted by the API server/) as string,
    });
  });

  it('leaves the health endpoints open (the kubelet probes them without a token)', async () => {
    // the harness gives --health-bind the metrics port's address, so they share its server (and its TLS)
    expect((await get('/healthz')).status).toBe(200);
  });

  it('serves a renewed certificate from the mounted Secret without a restart', async () => {
    const renewed = await servingPair('/CN=rtmpd-operator-metrics-renewed');
    // The kubelet's update: the new version's directory, then `..data` pointed at it in one rename.
    await secret.put(renewed);
    await eventually('the renewed certificate to be served', async () => {
      const res = await get('/healthz', undefined, renewed.cert).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    });
    await expect(get('/healthz')).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    /** The certificates the operator says it took, by fingerprint. */
    const reloaded = () =>
      fixture.operators[0]!.logs()
        .split('\n')
        .filter((line) => line.includes('"msg":"metrics certificate reloaded"'))
        .map((line) => (JSON.parse(line) as { fingerprint: string }).fingerprint);
    await eventually('the renewal to be logged', async () => (reloaded().length > 0 ? true : undefined));
    expect(reloaded()).toEqual([new X509Certificate(renewed.cert).fingerprint256]);
    ca = renewed.cert;
  });
});

describe('the TokenReview cache', () => {
  const bound = 1024;
  /** Scrapes once with each of `count` tokens the API server has never seen: each answer (401) is a new cache entry. */
  const fill = async (count: number, from: number) => {
    const tokens = Array.from({ length: count }, (_, i) => `Bearer never-issued-${id}-${from + i}`);
    for (let i = 0; i < tokens.length; i += 16)
      for (const res of await Promise.all(tokens.slice(i, i + 16).map((t) => scrape(t)))) expect(res.status).toBe(401);
  };

  it(`keeps the ${bound} newest answers and reviews the token of the oldest again`, async () => {
    // An answer is reused until the TTL (60 s) runs out; a revoked permission shows only once the token is reviewed again.
    const sa = 'revoked';
    const binding = `${readerRole}-${sa}`;
    await apply([
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } },
      clusterBinding(binding, readerRole, ns, sa),
    ]);
    try {
      const canRead = async () =>
        (
          await kubectl(['auth', 'can-i', 'get', '/metrics', `--as=system:serviceaccount:${ns}:${sa}`], { allowFailure: true })
        ).stdout.trim();
      await eventually('the binding to take effect', async () => ((await canRead()) === 'yes' ? true : undefined));
      const oldest = `Bearer ${await token(sa)}`;
      expect((await scrape(oldest)).status).toBe(200);
      await kubectl(['delete', 'clusterrolebinding', binding]);
      await eventually('the permission to be revoked', async () => ((await canRead()) === 'no' ? true : undefined));
      expect((await scrape(oldest)).status, 'the cached answer').toBe(200);
      await fill(bound - 1, 0);
      expect((await scrape(oldest)).status, `after ${bound - 1} newer answers`).toBe(200);
      await fill(1, bound - 1);
      expect((await scrape(oldest)).status, `after ${bound} newer answers`).toBe(403);
    } finally {
      await kubectl(['delete', 'clusterrolebinding', binding, '--ignore-not-found'], { allowFailure: true });
    }
  });
});
