// rtmpd behind HAProxy sending the PROXY protocol (v1 and v2) from
// 127.0.0.2, the one source rtmpd trusts, to each of its listeners: ffmpeg
// publishes through it over RTMP and RTMPS (the header before the TLS
// ClientHello) and the API and address-bound signed URLs (RTMP, HTTP-FLV over
// HTTP and HTTPS) see the client's address, not the balancer's; the
// per-address limit counts the clients behind the balancer, not the
// balancer; a forged header from a source that is not trusted is refused; a
// trusted source that sends garbage or nothing is closed within the deadline
// and counted. HAProxy as an HTTP reverse proxy from 127.0.0.4
// (--http-forwarded-from) adds X-Forwarded-For: the client is the right-most
// untrusted entry, and what a client writes there itself is not believed,
// through the proxy or not.
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedQuery } from '../src/auth/signed-url.ts';
import { selfSigned } from './support/certificates.ts';
import { testPatternInputs } from './support/clips.ts';
import { BALANCER_ADDRESS, FORWARDER_ADDRESS, startHaproxy } from './support/haproxy.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import {
  listStreams,
  metric,
  metricReaches,
  runFfmpeg,
  startServer,
  stopAll,
  tempDir,
  waitForStream,
  type RunningServer,
} from './support/processes.ts';

const TOKEN = 'proxy-test-token';
const SECRET = 'proxy-test-hmac-secret';
/** A client of its own: HAProxy's frontends take it from any 127.0.0.x. */
const CLIENT_ADDRESS = '127.0.0.5';

let server: RunningServer;
let haproxy: { ports: number[]; stop(): void };
let v1Port: number;
let v2Port: number;
let httpPort: number;
let rtmpsPort: number;
let httpsPort: number;
let forwarderPort: number;

beforeAll(async () => {
  const dir = await tempDir('rtmpd-proxy-');
  await writeFile(join(dir, 'tokens'), `${TOKEN}\n`);
  await writeFile(join(dir, 'hmac.key'), `${SECRET}\n`);
  const rules = [
    { app: 'bound', method: 'signed', secretFile: join(dir, 'hmac.key') },
    { app: '*', method: 'open' },
  ];
  const cert = await selfSigned(join(dir, 'cert'));
  server = await startServer([
    ...['--rtmps-bind', '127.0.0.1:0', '--https-bind', '127.0.0.1:0', '--tls-cert-file', cert.certFile, '--tls-key-file', cert.keyFile],
    ...[
      '--proxy-protocol',
      'rtmp,rtmps,http,https',
      '--proxy-protocol-from',
      `${BALANCER_ADDRESS}/32`,
      '--proxy-protocol-timeout-seconds',
      '1',
    ],
    ...['--http-forwarded-from', `${FORWARDER_ADDRESS}/32`],
    ...['--max-connections-per-address', '2', '--api-token-file', join(dir, 'tokens'), '--auth-rules', JSON.stringify(rules)],
  ]);
  const ready = server.logs.find((line) => line.msg === 'rtmpd ready') as { rtmps: string; https: string };
  const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
  haproxy = await startHaproxy(dir, [
    { to: server.rtmpPort, header: 'v1' },
    { to: server.rtmpPort, header: 'v2' },
    { to: server.httpPort, header: 'v1' },
    { to: portOf(ready.rtmps), header: 'v2' },
    { to: portOf(ready.https), header: 'v2' },
    { to: server.httpPort, header: 'forwarded-for' },
    { to: server.rtmpPort, header: 'v2', check: 'reset' },
    { to: server.httpPort, header: 'v2', check: 'reset' },
    { to: server.rtmpPort, header: 'v2', check: 'banner' },
  ]);
  [v1Port, v2Port, httpPort, rtmpsPort, httpsPort, forwarderPort] = haproxy.ports as [number, number, number, number, number, number];
}, 30_000);

afterAll(async () => {
  haproxy?.stop();
  stopAll();
  await server?.stop();
});

const refused = (reason: string) => metric(server, 'rtmpd_connections_refused_total', `protocol="rtmp",reason="${reason}"`);

/** Resolves with how long the server took to close a raw connection from `localAddress` that sent `bytes`. */
function closedAfter(localAddress: string, bytes: Buffer | string): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port: server.rtmpPort, localAddress }, () => socket.write(bytes));
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(Date.now() - started));
    setTimeout(() => reject(new Error('the server did not close the connection')), 10_000).unref();
  });
}

/** The status of a GET through the balancer's HTTPS frontend (the certificate is self-signed). */
function httpsStatus(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, path, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

/** What the HTTP port answers `request` sent raw from `localAddress`, until it closes the connection. */
function httpExchange(localAddress: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect({ host: '127.0.0.1', port: server.httpPort, localAddress }, () => socket.write(request));
    socket.on('data', (bytes: Buffer) => (answer += bytes.toString()));
    socket.once('error', reject);
    socket.once('close', () => resolve(answer));
  });
}

describe('rtmpd behind HAProxy with the PROXY protocol', () => {
  it.each([
    ['RTMP with a v1 header', 'v1', () => `rtmp://127.0.0.1:${v1Port}`],
    ['RTMP with a v2 header', 'v2', () => `rtmp://127.0.0.1:${v2Port}`],
    ['RTMPS with a v2 header', 'tls', () => `rtmps://127.0.0.1:${rtmpsPort}`],
  ])(
    'sees the address of ffmpeg publishing through %s, not the balancer',
    async (_, version, base) => {
      const publisher = runFfmpeg([
        ...['-re', ...testPatternInputs('320x240'), '-t', '20', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-c:a', 'aac'],
        ...['-f', 'flv', '-tls_verify', '0', `${base()}/live/through-${version}`],
      ]);
      try {
        await waitForStream(server, `rtmp/live/through-${version}`);
        const streams = await listStreams(server, TOKEN);
        const stream = streams.find((s) => s.stream_id === `rtmp/live/through-${version}`);
        // ffmpeg connects to HAProxy from 127.0.0.1; HAProxy to rtmpd from 127.0.0.2.
        expect(stream?.publisher.remote_address).toMatch(/^127\.0\.0\.1:\d+$/);
      } finally {
        publisher.child.kill('SIGKILL');
        await publisher.exited;
      }
    },
    30_000,
  );

  it('admits a signed URL bound to the client behind the balancer, and refuses one bound to the balancer', async () => {
    const expires = Math.floor(Date.now() / 1000) + 600;
    const url = (ip: string) =>
      `rtmp://127.0.0.1:${v2Port}/bound/cam?${signedQuery(SECRET, { action: 'publish', app: 'bound', key: 'cam', expires, ip })}`;
    const connectAndPublish = async (ip: string) => {
      const client = await RtmpClient.connect(url(ip), { localAddress: CLIENT_ADDRESS });
      try {
        await client.publish();
      } finally {
        client.destroy();
      }
    };
    await expect(connectAndPublish(BALANCER_ADDRESS)).rejects.toMatchObject({ code: 'NetStream.Publish.Unauthorized' });
    await expect(connectAndPublish(CLIENT_ADDRESS)).resolves.toBeUndefined();
  });

  it('sees the address of an HTTP-FLV player through the balancer over HTTP and HTTPS: an address-bound signed URL admits it', async () => {
    const expires = Math.floor(Date.now() / 1000) + 600;
    const path = (ip: string) => `/bound/cam.flv?${signedQuery(SECRET, { action: 'play', app: 'bound', key: 'cam', expires, ip })}`;
    const refused = await fetch(`http://127.0.0.1:${httpPort}${path(BALANCER_ADDRESS)}`);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('address_mismatch');
    // Admitted, and then not found: nothing publishes bound/cam.
    expect((await fetch(`http://127.0.0.1:${httpPort}${path('127.0.0.1')}`)).status).toBe(404);
    expect(await httpsStatus(path(BALANCER_ADDRESS))).toBe(403);
    expect(await httpsStatus(path('127.0.0.1'))).toBe(404);
  });

  it('takes the client from X-Forwarded-For through a trusted reverse proxy, never the entries a client wrote', async () => {
    const expires = Math.floor(Date.now() / 1000) + 600;
    const path = (ip: string) => `/bound/cam.flv?${signedQuery(SECRET, { action: 'play', app: 'bound', key: 'cam', expires, ip })}`;
    const forged = { 'x-forwarded-for': '203.0.113.66' };
    const status = async (port: number, ip: string) => (await fetch(`http://127.0.0.1:${port}${path(ip)}`, { headers: forged })).status;
    // Through HAProxy the header reads "203.0.113.66, 127.0.0.1": the client is 127.0.0.1.
    expect(await status(forwarderPort, '127.0.0.1')).toBe(404);
    expect(await status(forwarderPort, '203.0.113.66')).toBe(403);
    expect(await status(forwarderPort, FORWARDER_ADDRESS)).toBe(403);
    // Straight from a client, the header is its own word: ignored.
    expect(await status(server.httpPort, '203.0.113.66')).toBe(403);
    expect(await status(server.httpPort, '127.0.0.1')).toBe(404);
  });

  it('counts connections per client behind the balancer, not per balancer', async () => {
    const before = await refused('per_address');
    const open: RtmpClient[] = [];
    try {
      for (const localAddress of ['127.0.0.8', '127.0.0.8', '127.0.0.9', '127.0.0.10'])
        open.push(await RtmpClient.connect(`rtmp://127.0.0.1:${v1Port}/live/x`, { localAddress }));
      // Two from 127.0.0.8 are its limit; the balancer carries four.
      await expect(RtmpClient.connect(`rtmp://127.0.0.1:${v2Port}/live/x`, { localAddress: '127.0.0.8' })).rejects.toThrow();
      expect(await refused('per_address')).toBe(before + 1);
    } finally {
      for (const client of open) client.destroy();
    }
  });

  it('refuses a forged header from a source it does not trust, and serves that source plain RTMP', async () => {
    const badVersion = () => metric(server, 'rtmpd_handshake_failures_total', 'protocol="rtmp",reason="handshake_bad_version"');
    const before = await badVersion();
    const header = 'PROXY TCP4 203.0.113.9 127.0.0.1 4000 1935\r\n';
    expect(await closedAfter('127.0.0.3', Buffer.concat([Buffer.from(header), Buffer.from([3]), Buffer.alloc(1536)]))).toBeLessThan(5000);
    expect(await badVersion()).toBe(before + 1);
    // The HTTP port's parser refuses it as a request.
    const answer = await httpExchange('127.0.0.3', `${header}GET /health HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const client = await RtmpClient.connect(`rtmp://127.0.0.1:${server.rtmpPort}/live/direct`, { localAddress: '127.0.0.3' });
    try {
      await client.publish();
      const streams = await listStreams(server, TOKEN);
      expect(streams.find((s) => s.stream_id === 'rtmp/live/direct')?.publisher.remote_address).toMatch(/^127\.0\.0\.3:\d+$/);
    } finally {
      client.destroy();
    }
  });

  it("counts HAProxy's tcp-check that waits for a banner, sending nothing, as idle_no_header, not as a balancer without the PROXY protocol", async () => {
    const idle = await refused('idle_no_header');
    // Each check held until rtmpd closes it after 1 s, the next 500 ms later.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(await refused('idle_no_header')).toBeGreaterThanOrEqual(idle + 2);
    expect(await refused('proxy_header_timeout')).toBe(0);
    expect(await refused('bad_proxy_header')).toBe(0);
  });

  it("takes the balancer's health checks (a header, then a reset) without counting or logging a failed handshake", async () => {
    const badVersion = () => metric(server, 'rtmpd_handshake_failures_total', 'protocol="rtmp",reason="handshake_bad_version"');
    const badRequest = () => metric(server, 'rtmpd_http_client_errors_total', 'reason="bad_request"');
    const before = [await badVersion(), await badRequest()];
    // Checks got past their header, each port's, and were admitted: here, where nothing else connects to
    // the RTMP port and /metrics is read over one keep-alive connection, no other connections are accepted.
    const rtmpAccepted = await metric(server, 'rtmpd_connections_accepted_total', 'protocol="rtmp"');
    const httpAccepted = await metric(server, 'rtmpd_http_connections_accepted_total');
    await metricReaches(server, 'rtmpd_connections_accepted_total', 'protocol="rtmp"', rtmpAccepted + 1, 30_000);
    await metricReaches(server, 'rtmpd_http_connections_accepted_total', '', httpAccepted + 1, 30_000);
    expect([await badVersion(), await badRequest()]).toEqual(before);
    expect(server.logs.filter((l) => l.msg === 'rtmp protocol error, closing' && l.remote === '?:0')).toEqual([]);
  });

  it.each([
    ['RTMP', () => server.rtmpPort],
    ['HTTP', () => server.httpPort],
  ])('outlives a trusted source that resets its %s connection in the middle of its header', async (_, port) => {
    for (const bytes of ['PROXY TCP4 1.2', Buffer.from('0d0a0d0a000d0a515549540a21', 'hex')]) {
      const socket = connect({ host: '127.0.0.1', port: port(), localAddress: BALANCER_ADDRESS }, () => {
        socket.write(bytes);
        setTimeout(() => socket.resetAndDestroy(), 50);
      });
      await new Promise((resolve) => socket.once('close', resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(server.httpUrl('/health'))).status).toBe(200);
  });

  it('closes a trusted source that sends garbage at once, one that stops half-way through its header and one that sends nothing within the deadline, counting each', async () => {
    const idle = await refused('idle_no_header');
    // At once: each is refused for its header, counted before its connection closes, never by the deadline.
    for (const garbage of [Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)]), 'PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n']) {
      const [bad, late] = [await refused('bad_proxy_header'), await refused('proxy_header_timeout')];
      await closedAfter(BALANCER_ADDRESS, garbage);
      expect([await refused('bad_proxy_header'), await refused('proxy_header_timeout')]).toEqual([bad + 1, late]);
    }
    // --proxy-protocol-timeout-seconds 1; room above it for a loaded machine's late timers (without the deadline: never).
    const late = await refused('proxy_header_timeout');
    for (const bytes of ['PROXY TCP4 1.2', '']) {
      const closed = await closedAfter(BALANCER_ADDRESS, bytes);
      expect(closed).toBeGreaterThanOrEqual(900);
      expect(closed).toBeLessThan(4000);
    }
    expect(await refused('proxy_header_timeout')).toBe(late + 1);
    expect(await refused('idle_no_header')).toBeGreaterThanOrEqual(idle + 1);
    expect(server.logs.some((l) => String(l.msg).startsWith('proxy protocol: a malformed PROXY v1 line'))).toBe(true);
  }, 15_000);
});
