// The PROXY protocol on real loopback sockets: which connections must send a
// header (a listener that expects them, a trusted source), what the socket's
// address is after it (the client named, or the balancer's own for LOCAL),
// the bytes after the header read next, and a header split across writes.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../options.ts';
import { ProxyProtocol, type ProxyConfig } from './proxy-protocol.ts';

const config: ProxyConfig = { proxyProtocol: ['rtmp'], proxyProtocolFrom: ['127.0.0.2/32', 'fd00::/8'], proxyProtocolTimeoutSeconds: 5 };
const proxy = new ProxyProtocol(config, pino({ level: 'silent' }));
const noRefusals = () => ({ max_connections: 0, per_address: 0, bad_proxy_header: 0, proxy_header_timeout: 0, idle_no_header: 0 });

const servers: Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

/** A connection from `from` (a loopback address): the server's socket and the client's. */
async function connectFrom(from: string): Promise<{ socket: Socket; client: Socket }> {
  let accepted: (socket: Socket) => void = () => undefined;
  const server = createServer((socket) => accepted(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = new Promise<Socket>((resolve) => (accepted = resolve));
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, localAddress: from });
  client.on('error', () => undefined);
  return { socket: await socket, client };
}

/** Sends `writes` from `from` a few milliseconds apart, and reports what readHeader made of them. */
async function accept(from: string, writes: (string | Buffer)[]) {
  const { socket, client } = await connectFrom(from);
  for (const bytes of writes) {
    client.write(bytes);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const refused = noRefusals();
  const outcome = await new Promise<'done' | 'failed'>((resolve) =>
    proxy.readHeader(socket, 'rtmp', refused, { done: () => resolve('done'), failed: () => resolve('failed') }),
  );
  const next = outcome === 'done' ? await new Promise<Buffer>((resolve) => socket.once('data', resolve).resume()) : undefined;
  client.destroy();
  return { socket, outcome, next: next?.toString(), refused };
}

describe('ProxyProtocol', () => {
  it('expects a header only on the listeners named, from the sources trusted', async () => {
    const balancer = await connectFrom('127.0.0.2');
    expect(proxy.expects('rtmp', balancer.socket)).toBe(true);
    expect(proxy.expects('http', balancer.socket)).toBe(false);
    const other = await connectFrom('127.0.0.3');
    expect(proxy.expects('rtmp', other.socket)).toBe(false);
    [balancer, other].forEach(({ client }) => client.destroy());
  });

  it('makes the client a header names the socket address, and hands on the bytes after it, even split across reads', async () => {
    const { outcome, socket, next } = await accept('127.0.0.2', ['PROXY TCP4 203.0.11', '3.9 127.0.0.1 51000 1935\r\nhello']);
    expect(outcome).toBe('done');
    expect([socket.remoteAddress, socket.remotePort, socket.remoteFamily]).toEqual(['203.0.113.9', 51000, 'IPv4']);
    expect(next).toBe('hello');
  });

  it('keeps the balancer’s own address for a v2 LOCAL header (a health check)', async () => {
    const local = Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex'), Buffer.from('ping')]);
    const { outcome, socket, next } = await accept('127.0.0.2', [local]);
    expect(outcome).toBe('done');
    expect(socket.remoteAddress).toBe('127.0.0.2');
    expect(next).toBe('ping');
  });

  it('closes and counts a connection that starts with anything else', async () => {
    const { outcome, socket, refused } = await accept('127.0.0.2', ['GET / HTTP/1.1\r\n\r\n']);
    expect(outcome).toBe('failed');
    expect(socket.destroyed).toBe(true);
    expect(refused).toEqual({ ...noRefusals(), bad_proxy_header: 1 });
  });

  it('needs trusted sources to be named', () => {
    expect(() => new ProxyProtocol({ ...config, proxyProtocolFrom: [] }, pino({ level: 'silent' }))).toThrow(ConfigError);
  });
});
