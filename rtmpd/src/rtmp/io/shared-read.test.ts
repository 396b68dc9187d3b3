import { connect, createServer, Socket, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { withSharedReadBuffer } from './shared-read.ts';

describe('withSharedReadBuffer', () => {
  it('moves an accepted connection into a socket that reads into the shared buffer; the server still closes', async () => {
    const received: Buffer[] = [];
    let serverSide: Socket | undefined;
    const server = createServer({ pauseOnConnect: true }, (accepted) => {
      const { socket, onRead } = withSharedReadBuffer(accepted, Buffer.alloc(64 * 1024));
      serverSide = socket;
      // The bytes are only valid during the call, so they are copied, as the parsers do.
      onRead((bytes) => {
        received.push(Buffer.from(bytes));
        socket.write(Buffer.from(`got ${bytes.length};`));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
    const replies: Buffer[] = [];
    client.on('data', (d: Buffer) => replies.push(d));
    await new Promise<void>((resolve) => client.once('connect', resolve));
    const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    client.write(payload);
    await new Promise<void>((resolve) => {
      const check = () => (Buffer.concat(received).length >= payload.length ? resolve() : setTimeout(check, 10));
      check();
    });
    expect(Buffer.concat(received).equals(payload)).toBe(true);
    expect(serverSide!.remoteAddress).toBe('127.0.0.1');
    expect(serverSide!.remotePort).toBe(client.localPort);
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(replies).toString()).toMatch(/^(got \d+;)+$/);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    serverSide!.end();
    await clientClosed;
    // The server does not wait for a connection it handed over.
    await closed;
  });

  it('falls back to data events for a socket without a handle to move', async () => {
    const plain = new Socket();
    const { socket, onRead } = withSharedReadBuffer(plain, Buffer.alloc(64 * 1024));
    expect(socket).toBe(plain);
    const seen: string[] = [];
    onRead((bytes) => seen.push(bytes.toString()));
    plain.emit('data', Buffer.from('hello'));
    expect(seen).toEqual(['hello']);
    plain.destroy();
  });
});
