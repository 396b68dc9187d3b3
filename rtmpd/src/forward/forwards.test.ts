// The forwards of a hub's streams against loopback sockets that misbehave:
// no answer, junk, a message too large; the delays between retries. Which
// streams are forwarded: not a copy relayed from the owner pod, and rules
// read at each publish.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_FORWARDS_PER_STREAM, parseConfig, type Config, type ForwardRule } from '../config.ts';
import { StreamHub } from '../hub/hub.ts';
import type { PublisherInfo } from '../hub/stream.ts';
import { ServerHandshake } from '../rtmp/wire/handshake.ts';
import type { Logger } from '../telemetry/logger.ts';
import { startTestRtmpServer } from '../../test/support/rtmp-server.ts';
import { sleep, until } from '../../test/support/wait.ts';
import { Forwards } from './forwards.ts';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

const publisher = (protocol: PublisherInfo['protocol'] = 'rtmp'): PublisherInfo => ({
  protocol,
  remoteAddress: '127.0.0.1',
  close: () => {},
});

function setUp(rules: ForwardRule[], more: Partial<Config> = {}, logger: Logger = pino({ level: 'silent' })) {
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
  const config = { ...parseConfig({}), forwardRules: rules, forwardTimeoutSeconds: 1, forwardRetryMaxSeconds: 1, ...more };
  const forwards = new Forwards({ hub, config, logger });
  cleanups.push(() => {
    hub.closeAll();
    forwards.close();
  });
  return { hub, config, forwards };
}

const rule = (port: number, app = 'live'): ForwardRule => ({ app, key: '*', urls: [`rtmp://127.0.0.1:${port}/in/{key}`], urlFiles: [] });

/** A loopback server doing `onConnection` with each socket; closed after the test. */
async function destination(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

/** Answers the client's handshake, then writes `after` (the destination's first chunks). */
const handshakeThen = (after: Buffer) => (socket: Socket) => {
  const handshake = new ServerHandshake((bytes) => socket.write(bytes));
  let done = false;
  socket.on('data', (bytes: Buffer) => {
    if (done || handshake.push(bytes) === undefined) return;
    done = true;
    socket.write(after);
  });
};

describe('Forwards', () => {
  it('gives up on a destination that does not answer within the timeout, and retries it', async () => {
    const silent = await destination(() => {});
    const { hub, forwards } = setUp([rule(silent.port)]);
    const stream = hub.publish('live', 'cam', publisher());
    await until(() => typeof forwards.viewsOf(stream)[0]?.last_error === 'string', 5000);
    expect(forwards.viewsOf(stream)[0]).toMatchObject({ state: 'backoff', last_error: 'no answer in handshaking within 1 s' });
    await until(() => silent.sockets.length >= 2, 5000);
    expect(forwards.stats.failures.timeout).toBeGreaterThanOrEqual(1);
  });

  it('retries a failing destination after about 1 s, then about 2 s: the delay doubles from the first', async () => {
    const hangsUp = await destination((socket) => socket.destroy());
    const retries: number[] = [];
    const log = (line: string) => {
      const entry = JSON.parse(line) as { msg: string; retryInSeconds?: number };
      if (entry.msg === 'forward: failed; retrying') retries.push(entry.retryInSeconds!);
    };
    const { hub } = setUp([rule(hangsUp.port)], { forwardRetryMaxSeconds: 60 }, pino({ level: 'warn' }, { write: log }));
    hub.publish('live', 'cam', publisher());
    await until(() => retries.length >= 2, 5000);
    // Each delay is drawn within ±20% of its step.
    expect(retries[0]).toBeGreaterThanOrEqual(0.8);
    expect(retries[0]).toBeLessThanOrEqual(1.2);
    expect(retries[1]).toBeGreaterThanOrEqual(1.6);
    expect(retries[1]).toBeLessThanOrEqual(2.4);
  });

  it('retries after the first delay again once a publish has lasted 30 s, though failures in a row had doubled it', async () => {
    const origin = await startTestRtmpServer();
    const retries: number[] = [];
    const log = (line: string) => {
      const entry = JSON.parse(line) as { msg: string; retryInSeconds?: number };
      if (entry.msg === 'forward: failed; retrying') retries.push(entry.retryInSeconds!);
    };
    const { hub, forwards } = setUp(
      [rule(origin.server.address().port)],
      { forwardRetryMaxSeconds: 60 },
      pino({ level: 'warn' }, { write: log }),
    );
    // The clock the forwarder measures a publish with, moved on at will.
    const realNow = performance.now.bind(performance);
    let skipped = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + skipped);
    cleanups.push(() => clock.mockRestore());
    const stream = hub.publish('live', 'cam', publisher());
    const sendThenFail = async (lastingMs: number) => {
      await until(() => forwards.viewsOf(stream)[0]?.state === 'sending', 5000);
      skipped += lastingMs;
      const failures = retries.length;
      origin.hub.get('in', 'cam')!.publisher.close('kicked');
      await until(() => retries.length > failures, 5000);
    };
    await sendThenFail(0);
    await sendThenFail(0);
    await sendThenFail(30_000);
    expect(retries[0]).toBeLessThanOrEqual(1.2);
    expect(retries[1]).toBeGreaterThanOrEqual(1.6); // two failures in a row
    expect(retries[2]).toBeLessThanOrEqual(1.2); // after a healthy publish: the first delay again
  });

  it('drops a destination that sends a message larger than a destination may, or noise', async () => {
    // A chunk header announcing a 1 MiB command message: more than the 64 KiB a destination may send.
    const huge = Buffer.from([0x03, 0, 0, 0, 0x10, 0x00, 0x00, 20, 0, 0, 0, 0]);
    const big = await destination(handshakeThen(huge));
    const noise = await destination((socket) => socket.write(Buffer.alloc(4096, 0x42)));
    const { hub, forwards } = setUp([rule(big.port, 'big'), rule(noise.port, 'noise')]);
    const first = hub.publish('big', 'cam', publisher());
    const second = hub.publish('noise', 'cam', publisher());
    await until(() => forwards.viewsOf(first)[0]?.state === 'backoff' && forwards.viewsOf(second)[0]?.state === 'backoff', 5000);
    expect(forwards.viewsOf(first)[0]!.last_error).toMatch(/1048576 bytes/);
    expect(forwards.viewsOf(second)[0]!.last_error).toMatch(/S0 version 66/);
    expect(forwards.stats.failures.protocol).toBeGreaterThanOrEqual(2);
  });

  it('forwards no stream relayed from its owner pod, and takes rules changed while running for later publishes', async () => {
    const { sockets, port } = await destination(() => {});
    const { hub, config, forwards } = setUp([]);
    const before = hub.publish('live', 'early', publisher());
    config.forwardRules = [rule(port)];
    const relayed = hub.publish('live', 'relayed', publisher('relay'));
    const later = hub.publish('live', 'later', publisher());
    await until(() => sockets.length === 1, 5000);
    await sleep(100);
    expect(sockets).toHaveLength(1);
    expect(forwards.viewsOf(before)).toEqual([]);
    expect(forwards.viewsOf(relayed)).toEqual([]);
    expect(forwards.viewsOf(later)).toMatchObject([{ destination: `rtmp://127.0.0.1:${port}/in/***`, attempts: 1 }]);
    hub.unpublish(later);
    expect(forwards.viewsOf(later)).toEqual([]);
    expect(forwards.countsByState()).toMatchObject({ sending: 0, backoff: 0, handshaking: 0 });
  });

  it('forwards a stream to at most MAX_FORWARDS_PER_STREAM destinations, however many lines its URL files hold', async () => {
    const silent = await destination(() => {});
    const dir = mkdtempSync(join(tmpdir(), 'rtmpd-forward-urls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const urlFile = join(dir, 'urls');
    writeFileSync(urlFile, Array.from({ length: 40 }, (_, i) => `rtmp://127.0.0.1:${silent.port}/in/key${i}`).join('\n'));
    const { hub, forwards } = setUp([{ ...rule(silent.port), urlFiles: [urlFile] }]);
    const stream = hub.publish('live', 'cam', publisher());
    await until(() => forwards.viewsOf(stream).length > 0, 5000);
    expect(forwards.viewsOf(stream)).toHaveLength(MAX_FORWARDS_PER_STREAM);
    expect(() => parseConfig({ forwardRules: [{ urls: Array.from({ length: 17 }, () => 'rtmp://h/a/k') }] })).toThrow(/16/);
  });
});
