// The README's memory model, measured on a running rtmpd: clients that hold
// unfinished messages cost at most the share of --partial-messages-max-bytes
// the model gives them, however many there are.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeMessage } from '../src/rtmp/wire/chunk-writer.ts';
import { ClientHandshake } from '../src/rtmp/wire/handshake.ts';
import { MessageType } from '../src/rtmp/wire/message-types.ts';
import { startServer, stopAll } from './support/processes.ts';
import { until } from './support/wait.ts';

const MiB = 1024 * 1024;
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

afterAll(() => stopAll());

/** A connection that has done the handshake and nothing else. */
async function handshaken(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1');
  let closed = false;
  socket.on('error', () => {});
  socket.once('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    const handshake = new ClientHandshake('simple', (b) => socket.write(b));
    socket.once('connect', () => handshake.start());
    socket.on('data', (d: Buffer) => {
      try {
        if (handshake.push(d) !== undefined) resolve();
      } catch (err) {
        reject(err as Error);
      }
    });
    socket.once('close', () => reject(new Error('closed during the handshake')));
  });
  return { socket, closed: () => closed };
}

describe('memory model', () => {
  it('holds unfinished messages of clients not publishing to half of --partial-messages-max-bytes', async () => {
    const budget = 32 * MiB;
    const server = await startServer([
      ...['--partial-messages-max-bytes', String(budget), '--max-message-bytes-before-publish', String(64 * 1024)],
      ...['--connect-timeout-seconds', '300', '--max-connections-per-address', '0', '--recording-enabled', 'false'],
      ...['--snapshot-enabled', 'false'],
    ]);
    const pid = server.child.pid!;
    const clients: { socket: Socket; closed: () => boolean }[] = [];
    for (let i = 0; i < 800; i++) clients.push(await handshaken(server.rtmpPort));
    const idle = rssMiB(pid);
    // Each sends all of a 60 KiB message but its last byte (so its pages are touched, not only reserved):
    // without a budget, 800 x 60 KiB = 47 MiB held.
    const message = serializeMessage(6, MessageType.audio, 1, 0, Buffer.alloc(60 * 1024, 1), 128);
    const unfinished = message.subarray(0, message.length - 1);
    for (const client of clients) client.socket.write(unfinished);
    const metric = async () => {
      const text = await (await fetch(server.httpUrl('/metrics'))).text();
      return Number(/^rtmpd_rtmp_partial_message_bytes (\d+)/m.exec(text)![1]);
    };
    // The first 16 MiB worth are held, the rest closed; wait until every client has its answer.
    await until(() => clients.filter((c) => c.closed()).length >= 800 - Math.floor(budget / 2 / (60 * 1024)), 30_000);
    const held = await metric();
    expect(held).toBeLessThanOrEqual(budget / 2);
    expect(held).toBeGreaterThan(budget / 2 - 60 * 1024);
    // The model: at most half the budget more than the same connections idle. Bodies are pooled in 64 KiB
    // classes; the reads that brought 47 MiB in (most of it refused) leave up to ~10 MiB for the GC, hence
    // the 20 MiB of slack. Measured: 26 MiB with the budget; 54 MiB without it (47 MiB held).
    const grown = rssMiB(pid) - idle;
    expect(grown).toBeLessThanOrEqual((budget / 2 / MiB) * (64 / 60) + 20);
    for (const client of clients) client.socket.destroy();
    await until(() => clients.every((c) => c.closed()));
    expect(await server.stop()).toBe(0);
  });
});
