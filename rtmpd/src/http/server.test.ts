import { rm } from 'node:fs/promises';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect as connectTls } from 'node:tls';
import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { parseConfig, type Config } from '../config.ts';
import { selfSigned } from '../../test/support/certificates.ts';
import { sleep, until } from '../../test/support/wait.ts';
import { ProxyProtocol } from '../connections/proxy-protocol.ts';
import { createLogger } from '../telemetry/logger.ts';
import { startTls } from '../tls/tls.ts';
import { zeroConnectionRefusals } from '../telemetry/metrics.ts';
import { listenHttp, pacedByHub, type HttpServer } from './server.ts';

let server: HttpServer | undefined;
afterEach(async () => {
  await server?.close(100);
  server = undefined;
});

/** What /big answers: more than loopback's socket buffers on both sides hold. */
const BIG_BYTES = 32 << 20;

/**
 * An app that answers /slow with a response that trickles for `ms` (as
 * HTTP-FLV does), /big with BIG_BYTES from a stream (as a recording download
 * does), /paced with a head and nothing more, its pace left to the hub (as a
 * quiet HTTP-FLV stream's), and everything else at once.
 */
async function serve(overrides: Partial<Config>, transports?: Parameters<typeof listenHttp>[2]) {
  const app = new Koa();
  app.use(async (ctx) => {
    if (ctx.path === '/big') {
      ctx.body = Readable.from(
        (function* () {
          for (let sent = 0; sent < BIG_BYTES; sent += 64 << 10) yield Buffer.alloc(64 << 10);
        })(),
      );
      return;
    }
    if (ctx.path === '/paced') {
      ctx.respond = false;
      pacedByHub(ctx.res);
      ctx.res.writeHead(200, { 'Content-Type': 'video/x-flv' });
      ctx.res.write('FLV');
      return;
    }
    if (ctx.path !== '/slow') {
      for await (const _ of ctx.req); // the whole body, however long it takes
      ctx.body = { ok: true };
      return;
    }
    ctx.respond = false;
    ctx.res.writeHead(200, { 'Content-Type': 'text/plain' });
    for (let i = 0; i < 5; i++) {
      ctx.res.write(`${i}\n`);
      await new Promise((resolve) => setTimeout(resolve, Number(ctx.query.ms) / 5));
    }
    ctx.res.end('done\n');
  });
  app.silent = true;
  server = await listenHttp(app, { ...parseConfig({}), httpBind: '127.0.0.1:0', ...overrides }, transports);
  return server;
}

/** A raw connection (from `from`, a loopback address) that collects what it receives and when it was closed. */
function open(port: number, from = '127.0.0.1') {
  const socket: Socket = connect({ port, host: '127.0.0.1', localAddress: from });
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  socket.on('error', () => {});
  const openedAt = performance.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - openedAt)));
  return { socket, closed, text: () => Buffer.concat(received).toString() };
}

/** A GET of / by Node's HTTP client from `from`, a loopback address: its status and body. */
function getFrom(port: number, from: string): Promise<{ status?: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', localAddress: from, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

describe('HTTP listener', () => {
  it('answers headers that never end, and a body that never ends, with a JSON 408 and closes', async () => {
    const { address, stats } = await serve({ httpHeadersTimeoutSeconds: 1, httpRequestTimeoutSeconds: 2 });
    const port = address().port;
    const headers = open(port);
    headers.socket.write('GET /api/v1/rtmp/streams HTTP/1.1\r\nHost: x\r\n');
    const keepTyping = setInterval(() => headers.socket.write('X-Slow: 1\r\n'), 200);
    const body = open(port);
    body.socket.write('PUT /api HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
    const keepSending = setInterval(() => body.socket.write('a'), 200);
    const [headersLived, bodyLived] = await Promise.all([headers.closed, body.closed]);
    clearInterval(keepTyping);
    clearInterval(keepSending);
    expect(headersLived).toBeGreaterThanOrEqual(900);
    expect(bodyLived).toBeGreaterThanOrEqual(1900);
    for (const conn of [headers, body]) {
      expect(conn.text()).toMatch(/^HTTP\/1.1 408 Request Timeout\r\n/);
      expect(JSON.parse(conn.text().split('\r\n\r\n')[1]!)).toEqual({ error: { code: 'request_timeout', message: expect.any(String) } });
    }
    expect(stats.clientErrors).toEqual({ request_timeout: 2 });
  });

  it('cuts a connection it answered with an error by hand once it had a second to hang up, and answers CONNECT with a JSON 405', async () => {
    const { address } = await serve({ httpHeadersTimeoutSeconds: 1 });
    const port = address().port;
    // Clients that never close their side: before, each held its connection, and a slot, as long as it liked.
    const requests = ['NOT HTTP AT ALL\r\n\r\n', '', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'];
    const clients = requests.map((request) => {
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.write(request);
      const received: Buffer[] = [];
      socket.on('data', (d: Buffer) => received.push(d));
      socket.on('error', () => {});
      // After the answer and the server's end: once the server has let go, a byte sent is answered with a reset,
      // which closes the socket here.
      let poke: NodeJS.Timeout | undefined;
      socket.once('end', () => (poke = setInterval(() => socket.write('x'), 200)));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      onTestFinished(() => void (clearInterval(poke), socket.destroy()));
      return { closed, text: () => Buffer.concat(received).toString() };
    });
    await Promise.all(clients.map((c) => c.closed));
    expect(clients.map((c) => c.text().split('\r\n')[0])).toEqual([
      'HTTP/1.1 400 Bad Request',
      'HTTP/1.1 408 Request Timeout',
      'HTTP/1.1 405 Method Not Allowed',
    ]);
    expect(JSON.parse(clients[2]!.text().split('\r\n\r\n')[1]!)).toEqual({
      error: { code: 'method_not_allowed', message: expect.any(String) },
    });
  });

  it('lets a response outlast the request timeout, and closes a connection idle between requests', async () => {
    const { address } = await serve({ httpHeadersTimeoutSeconds: 1, httpRequestTimeoutSeconds: 1, httpKeepAliveTimeoutSeconds: 1 });
    const res = await fetch(`http://127.0.0.1:${address().port}/slow?ms=2500`);
    expect(await res.text()).toBe('0\n1\n2\n3\n4\ndone\n');
    const idle = open(address().port);
    idle.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => idle.text().includes('{"ok":true}'));
    expect(await idle.closed).toBeLessThan(3000);
  });

  it('closes a connection whose answer is not read for --player-stall-timeout-seconds, not one read slowly nor one the hub paces', async () => {
    const { address, stats } = await serve({ playerStallTimeoutSeconds: 2 });
    const port = address().port;
    // Asks for a download and never reads it: the socket buffers fill and nothing more leaves.
    const stalled = open(port);
    stalled.socket.pause();
    stalled.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    const paced = open(port);
    paced.socket.write('GET /paced HTTP/1.1\r\nHost: x\r\n\r\n');
    // Reads in bursts with pauses well under the timeout.
    const slow = open(port);
    let slowBytes = 0;
    slow.socket.on('data', (d: Buffer) => (slowBytes += d.length));
    slow.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    const bursts = setInterval(() => (slow.socket.isPaused() ? slow.socket.resume() : slow.socket.pause()), 200);
    onTestFinished(() => clearInterval(bursts));
    const asked = performance.now();
    await until(() => stats.clientErrors.response_stalled === 1, 15_000);
    expect(performance.now() - asked).toBeGreaterThanOrEqual(1900);
    // What was sent before the close is still there to read; the rest never comes.
    stalled.socket.resume();
    await stalled.closed;
    expect(stalled.text().length).toBeLessThan(BIG_BYTES);
    await until(() => slowBytes >= BIG_BYTES, 30_000);
    expect(slow.socket.destroyed).toBe(false);
    // Silent for longer than the timeout, which would have cut it at 2 s.
    await sleep(asked + 3000 - performance.now());
    expect(paced.text()).toMatch(/^HTTP\/1.1 200 OK\r\n[^]*\r\nFLV\r\n$/);
    expect(paced.socket.destroyed).toBe(false);
    expect(stats.clientErrors).toEqual({ response_stalled: 1 });
    [paced, slow].forEach((c) => c.socket.destroy());
  }, 40_000);

  it('answers 16 requests sent ahead of their answers, and closes a connection that sends more', async () => {
    // Every deadline that could close a connection is an hour away: within the test's timeout only the limit can.
    const hour = 3600;
    const deadlines = { httpHeadersTimeoutSeconds: hour, httpRequestTimeoutSeconds: hour, httpKeepAliveTimeoutSeconds: hour };
    const { address, stats } = await serve({ ...deadlines, playerStallTimeoutSeconds: hour });
    const port = address().port;
    const sixteen = open(port);
    sixteen.socket.write('GET /slow?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(16));
    await until(() => sixteen.text().split('done\n').length === 17);
    // A scanner's flood of GETs it never reads the answers to: each would be held until the request timeout.
    const flood = open(port);
    flood.socket.pause();
    flood.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1000));
    await flood.closed;
    expect(stats.clientErrors).toEqual({ pipelined: 1 });
    expect(sixteen.socket.destroyed).toBe(false);
  });

  it('drops connections past --http-max-connections and answers malformed requests with a JSON 400', async () => {
    const { address, stats } = await serve({ httpMaxConnections: 2 });
    const port = address().port;
    const held = [open(port), open(port)];
    // Two live responses hold both slots.
    held.forEach((c) => c.socket.write('GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n'));
    await until(() => held.every((c) => c.text().includes('\r\n\r\n')));
    const third = open(port);
    await third.closed;
    expect(third.text()).toBe('');
    expect(stats.connectionsRefused).toEqual({
      max_connections: 1,
      per_address: 0,
      bad_proxy_header: 0,
      proxy_header_timeout: 0,
      idle_no_header: 0,
    });
    held.forEach((c) => c.socket.destroy());
    await Promise.all(held.map((c) => c.closed));
    const bad = open(port);
    bad.socket.write('NOT HTTP AT ALL\r\n\r\n');
    await bad.closed;
    expect(bad.text()).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
    // Without a Host header, a JSON 400 too (Node's own answer has no body), and the connection is closed.
    const hostless = open(port);
    hostless.socket.write('GET /health HTTP/1.1\r\n\r\n');
    await hostless.closed;
    expect(hostless.text()).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
    expect(JSON.parse(hostless.text().split('\r\n\r\n')[1]!)).toEqual({ error: { code: 'bad_request', message: expect.any(String) } });
    expect(stats.clientErrors).toEqual({ bad_request: 2 });
  });

  it('answers a connection past --http-max-connections-per-address with a JSON 429, while other addresses get in', async () => {
    const { address, stats } = await serve({ httpMaxConnectionsPerAddress: 2 });
    const port = address().port;
    // Two live responses (HTTP-FLV players, say) from 127.0.0.2 take its two slots.
    const held = [open(port, '127.0.0.2'), open(port, '127.0.0.2')];
    held.forEach((c) => c.socket.write('GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n'));
    await until(() => held.every((c) => c.text().includes('\r\n\r\n')));
    // A real HTTP client from the same address is refused, and reads why.
    const refused = await getFrom(port, '127.0.0.2');
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body)).toEqual({ error: { code: 'too_many_connections', message: expect.any(String) } });
    expect(stats.connectionsRefused).toEqual({ ...zeroConnectionRefusals(), per_address: 1 });
    // Another address still gets in.
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).json()).toEqual({ ok: true });
    // A slot freed is a slot 127.0.0.2 can have again (once the server has seen the close).
    held[0]!.socket.destroy();
    let status: number | undefined;
    for (let tries = 0; status !== 200 && tries < 50; tries++) {
      await sleep(20);
      ({ status } = await getFrom(port, '127.0.0.2'));
    }
    expect(status).toBe(200);
  });

  it('closes an HTTPS connection past --http-max-connections-per-address before its TLS handshake', async () => {
    const dir = join(tmpdir(), `rtmpd-https-per-address-${process.pid}`);
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const cert = await selfSigned(dir);
    const config = { ...parseConfig({}), httpsBind: '127.0.0.1:0', tlsCertFile: cert.certFile, tlsKeyFile: cert.keyFile };
    const tls = await startTls(config, await createLogger({ logLevel: 'fatal', logFormat: 'json' }));
    onTestFinished(() => tls.close());
    const { secureAddress, stats } = await serve(
      { ...config, httpMaxConnectionsPerAddress: 1 },
      { secure: { accept: (raw, outcome) => tls.handshakes.accept(raw, 'https', outcome) } },
    );
    const port = secureAddress()!.port;
    /** An HTTPS request from `from`: its answer, or the error that ended it. */
    const request = (from: string) => {
      const socket = connectTls({ socket: connect({ port, host: '127.0.0.1', localAddress: from }), rejectUnauthorized: false });
      socket.write('GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n');
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      const ended = new Promise<string>((resolve) => {
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        socket.on('close', () => resolve('closed'));
      });
      return { socket, ended, text: () => text };
    };
    const first = request('127.0.0.2');
    await until(() => first.text().startsWith('HTTP/1.1 200 OK'));
    const second = request('127.0.0.2');
    expect(await second.ended).toBe('ECONNRESET');
    expect(second.text()).toBe('');
    expect(tls.handshakes.stats.handshakes.https).toBe(1); // the refused one cost no handshake
    expect(stats.connectionsRefused).toEqual({ ...zeroConnectionRefusals(), per_address: 1 });
    const other = request('127.0.0.3');
    await until(() => other.text().startsWith('HTTP/1.1 200 OK'));
    // The slot is freed when the connection closes, after its handshake or in it.
    first.socket.destroy();
    const notTls = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.4' });
    notTls.on('error', () => {});
    notTls.end('GET / HTTP/1.1\r\n\r\n');
    /** Asks again from `from` until its slot is free (the server sees a close after the client does). */
    const getsIn = async (from: string) => {
      for (let tries = 0; tries < 20; tries++) {
        const attempt = request(from);
        if ((await Promise.race([attempt.ended, sleep(200).then(() => 'open')])) === 'open') return attempt;
      }
      throw new Error(`${from} never got its slot back`);
    };
    const again = [await getsIn('127.0.0.2'), await getsIn('127.0.0.4')];
    await until(() => again.every((c) => c.text().startsWith('HTTP/1.1 200 OK')));
    [...again, other].forEach((c) => c.socket.destroy());
  });

  it('behind a balancer sending the PROXY protocol, limits each client behind it, not the balancer, and closes one that never sends its header at close', async () => {
    const proxy = new ProxyProtocol(
      { proxyProtocol: ['http'], proxyProtocolFrom: ['127.0.0.2/32'], proxyProtocolTimeoutSeconds: 5 },
      pino({ level: 'silent' }),
    );
    const http = await serve({ httpMaxConnectionsPerAddress: 1 }, { proxy });
    const port = http.address().port;
    /** A keep-alive request the balancer (127.0.0.2) carries for `client`. */
    const carried = (client: string) => {
      const conn = open(port, '127.0.0.2');
      conn.socket.write(`PROXY TCP4 ${client} 127.0.0.1 40000 ${port}\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`);
      return conn;
    };
    const first = carried('192.0.2.1');
    const second = carried('192.0.2.2');
    await until(() => [first, second].every((c) => c.text().startsWith('HTTP/1.1 200 OK')));
    const again = carried('192.0.2.1');
    await until(() => again.text().startsWith('HTTP/1.1 429 '));
    expect(http.stats.connectionsRefused).toEqual({
      max_connections: 0,
      per_address: 1,
      bad_proxy_header: 0,
      proxy_header_timeout: 0,
      idle_no_header: 0,
    });
    [first, second, again].forEach((c) => c.socket.destroy());
    const awaitingHeader = vi.spyOn(proxy, 'readHeader');
    const silent = open(port, '127.0.0.2');
    // Accepted and awaiting its header before close(): one still in the backlog would be closed with the listener.
    await until(() => awaitingHeader.mock.calls.some(([socket]) => socket.remotePort === silent.socket.localPort));
    await http.close(100);
    server = undefined;
    // Ended by close(), not by its 5 s header deadline, which would have counted it.
    await silent.closed;
    expect(http.stats.connectionsRefused.idle_no_header).toBe(0);
  });
});
