// The operator's /metrics, /healthz and /readyz when something goes wrong: a
// failing scrape is answered with rtmpd's JSON error body (no stack) and
// logged with its stack, once per distinct failure, not once per scrape; a
// path or a method they do not serve gets the same JSON body. A real HTTP
// server on a loopback port, a real prom-client registry whose collector
// fails as a broken one would, and pino writing to memory.
import { Agent, get as httpsGet } from 'node:https';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ListenError, serveEndpoints, type Endpoints } from './endpoints.ts';
import { parseFlags } from './flags.ts';

interface LogLine {
  level: number;
  msg: string;
  path?: string;
  repeated?: number;
  err?: { type: string; message: string; stack: string };
}

let endpoints: Endpoints | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await endpoints?.close();
  endpoints = undefined;
});

/** Endpoints on two loopback ports (or as `args` say), their registry failing while `failure()` says why; the lines they log. */
async function serve(failure: () => string | undefined, args = ['--metrics-bind=127.0.0.1:0', '--health-bind=127.0.0.2:0']) {
  const registry = new Registry();
  new Gauge({
    name: 'rtmpd_operator_test_gauge',
    help: 'fails while the test says so',
    registers: [registry],
    collect() {
      const why = failure();
      if (why) throw new Error(why);
      this.set(1);
    },
  });
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  const { flags } = parseFlags(args, {});
  endpoints = await serveEndpoints({ flags, kubeConfig: unreachableCluster(), registry, notReady: () => undefined, log: pino(sink) });
  return { metrics: `http://${endpoints.metricsAddress}`, health: `http://${endpoints.healthAddress}`, lines };
}

/** A kubeconfig whose API server nothing here asks (token authentication makes its clients at start). */
function unreachableCluster(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'none', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'none' }],
    contexts: [{ name: 'none', cluster: 'none', user: 'none' }],
    currentContext: 'none',
  });
  return kc;
}

const errors = (lines: LogLine[]) => lines.filter((l) => l.level === 50);

describe('the endpoints, when an answer fails', () => {
  it('answers 500 with a JSON error and no stack, and logs the error with its stack once, not at every scrape', async () => {
    const { metrics, lines } = await serve(() => 'the collector broke');
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${metrics}/metrics`);
      expect(res.status).toBe(500);
      expect(res.headers.get('content-type')).toBe('application/json');
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({
        error: { code: 'internal_error', message: "internal server error; the operator's log says why" },
      });
      expect(text).not.toMatch(/collector broke|endpoints\.ts|at /);
    }
    expect(errors(lines)).toHaveLength(1);
    const [logged] = errors(lines);
    expect(logged?.msg).toBe('answering /metrics failed');
    expect(logged?.path).toBe('/metrics');
    expect(logged?.err?.message).toBe('the collector broke');
    expect(logged?.err?.stack).toMatch(/collect/);
  });

  it('logs a new failure at once, the same one again after 10 minutes with how often it recurred, and the recovery', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let why: string | undefined = 'first';
    const { metrics, lines } = await serve(() => why);
    const scrape = async () => (await fetch(`${metrics}/metrics`)).status;
    expect(await scrape()).toBe(500);
    expect(await scrape()).toBe(500);
    why = 'second';
    expect(await scrape()).toBe(500);
    expect(errors(lines).map((l) => l.err?.message)).toEqual(['first', 'second']);
    for (let i = 0; i < 4; i++) expect(await scrape()).toBe(500);
    vi.advanceTimersByTime(10 * 60_000);
    expect(await scrape()).toBe(500);
    expect(errors(lines).map((l) => [l.err?.message, l.repeated])).toEqual([
      ['first', undefined],
      ['second', undefined],
      ['second', 4],
    ]);
    why = undefined;
    expect(await scrape()).toBe(200);
    expect(await scrape()).toBe(200);
    expect(lines.filter((l) => l.msg === '/metrics answers again')).toHaveLength(1);
  });
});

describe('the endpoints, what they do not serve', () => {
  it('answers a path this port does not serve with a JSON 404 that names those it does', async () => {
    const { metrics, health } = await serve(() => undefined);
    for (const url of [`${metrics}/nope`, `${health}/metrics`]) {
      const res = await fetch(url);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
    const body = (await (await fetch(`${health}/metrics`)).json()) as { error: { message: string } };
    expect(body.error.message).toBe('no route for GET /metrics; this port serves /healthz, /readyz');
  });

  it('answers a method other than GET and HEAD with a JSON 405 and Allow, and HEAD like GET without a body', async () => {
    const { metrics, health } = await serve(() => undefined);
    const post = await fetch(`${metrics}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toEqual({ error: { code: 'method_not_allowed', message: '/metrics takes GET, HEAD, not POST' } });
    const head = await fetch(`${health}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });
});

describe('the endpoints on their TLS port (--metrics-auth=kubernetes)', () => {
  /** GET over TLS, trusting the self-signed certificate. */
  const getOverTls = (url: string) =>
    new Promise<{ status?: number; body: string }>((resolve, reject) =>
      httpsGet(url, { rejectUnauthorized: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString())).on('end', () => resolve({ status: res.statusCode, body }));
      }).on('error', reject),
    );

  it('answers a plain HTTP request with a JSON 400, as Go servers do, and TLS clients as before', async () => {
    const { metrics } = await serve(
      () => undefined,
      ['--metrics-auth=kubernetes', '--metrics-bind=127.0.0.1:0', '--health-bind=127.0.0.1:0'],
    );
    for (const path of ['/healthz', '/metrics']) {
      const res = await fetch(`${metrics}${path}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/json');
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('tls_required');
      expect(error.message).toMatch(/^Client sent an HTTP request to an HTTPS server/);
    }
    expect(await getOverTls(`${metrics.replace('http:', 'https:')}/healthz`)).toEqual({ status: 200, body: 'ok' });
  });

  it('refuses a TLS port already in use with the ListenError that names its flag', async () => {
    const { metrics } = await serve(
      () => undefined,
      ['--metrics-auth=kubernetes', '--metrics-bind=127.0.0.1:0', '--health-bind=127.0.0.1:0'],
    );
    const taken = metrics.replace('http://', '');
    const { flags } = parseFlags(['--metrics-auth=kubernetes', `--metrics-bind=${taken}`, '--health-bind=127.0.0.2:0'], {});
    await expect(
      serveEndpoints({
        flags,
        kubeConfig: unreachableCluster(),
        registry: new Registry(),
        notReady: () => undefined,
        log: pino({ level: 'silent' }),
      }),
    ).rejects.toThrow(new ListenError(`cannot listen on ${taken} (--metrics-bind): the address is already in use`));
  });

  it('keeps a TLS connection alive between requests, and close() ends it while idle rather than waiting out its keep-alive', async () => {
    const { metrics } = await serve(
      () => undefined,
      ['--metrics-auth=kubernetes', '--metrics-bind=127.0.0.1:0', '--health-bind=127.0.0.1:0'],
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    /** GET /healthz over the agent's one connection: the socket it went over, once the answer was read. */
    const healthz = () =>
      new Promise<Socket>((resolve, reject) =>
        httpsGet(`${metrics.replace('http:', 'https:')}/healthz`, { agent }, (res) => {
          const { socket } = res;
          res.resume().on('end', () => resolve(socket));
        }).on('error', reject),
      );
    const socket = await healthz();
    expect(await healthz()).toBe(socket);
    const idleSince = performance.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - idleSince)));
    await endpoints?.close();
    endpoints = undefined;
    // Its keep-alive timeout (Node's default, 5 s) would end it after 5 s or more; close() ends it at once.
    expect(await closed).toBeLessThan(4000);
    agent.destroy();
  });
});
