import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config.ts';
import { StreamHub } from '../hub/hub.ts';
import { streamId } from '../hub/names.ts';
import { MediaPacket, PacketFlag } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import { FlvDemuxer } from '../flv/demux.ts';
import { SocketIo } from '../rtmp/io/socket-io.ts';
import type { AdmissionLease } from '../rtmp/server/admission.ts';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import { jsonErrors } from './errors.ts';
import { FlvResponse, httpFlvRoute, type HttpFlvOptions } from './http-flv.ts';
import { listenHttp } from './server.ts';

const logger = pino({ level: 'silent' });
let clip: string;
let cleanup: (() => Promise<void>) | undefined;

beforeAll(async () => {
  clip = await lavfiClip({ width: 320, height: 180, seconds: 2 });
});

afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** An admission lease that counts what its holder does with it. */
function countingLease(): AdmissionLease & { attached: number; released: number } {
  const lease = {
    attached: 0,
    released: 0,
    attach: () => void lease.attached++,
    release: () => void lease.released++,
  };
  return lease;
}

/** HTTP-FLV alone on a real server; `stop` closes every connection, so every response has closed once it resolves. */
async function serve(playWaitMs: number, authorizePlay: HttpFlvOptions['authorizePlay']) {
  const hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const app = new Koa();
  app.silent = true;
  app.use(jsonErrors(logger));
  const router = httpFlvRoute({ hub, playerIo: new SocketIo(), playWaitMs, authorizePlay });
  app.use(router.routes()).use(router.allowedMethods());
  const server = await listenHttp(app, { ...parseConfig({}), httpBind: '127.0.0.1:0' });
  const stop = async () => {
    hub.closeAll();
    await server.close(1000);
  };
  cleanup = stop;
  const { port } = server.address();
  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  return { hub, url, port, stats: server.stats, stop };
}

describe('HTTP-FLV requests sent ahead of an answer (HTTP/1.1 pipelining)', () => {
  it('answers a play sent before the answer ahead of it ended with a JSON 400 in its turn, counted, and keeps the connection', async () => {
    const { hub, port, stats, stop } = await serve(0, undefined);
    await publishFlv(hub, 'live', 'cam', clip);
    const socket = connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    socket.on('data', (bytes: Buffer) => parts.push(bytes));
    const text = () => Buffer.concat(parts).toString('latin1');
    socket.write('GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2));
    await vi.waitFor(() => expect(stats.clientErrors).toEqual({ pipelined_play: 1 }), { timeout: 10_000 });
    // The first plays until its stream ends; the refusal follows it (before, a 200 whose tags never came, its connection held).
    hub.closeAll();
    await vi.waitFor(
      () => expect(text()).toMatch(/\r\n0\r\n\r\nHTTP\/1.1 400 Bad Request\r\n[^]*\r\n\r\n\{"error":\{"code":"pipelined_request"/),
      {
        timeout: 10_000,
      },
    );
    expect(text().match(/HTTP\/1.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(socket.destroyed).toBe(false);
    socket.destroy();
    await stop();
  });
});

describe('HTTP-FLV admission leases', () => {
  it('gives the lease back once when the stream did not come within the play wait (404)', async () => {
    const lease = countingLease();
    const { url, stop } = await serve(100, () => Promise.resolve(lease));
    const res = await fetch(url('/live/cam.flv'));
    expect(res.status).toBe(404);
    expect((await res.json()) as unknown).toMatchObject({ error: { code: 'stream_not_found' } });
    await stop();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('gives the lease back once when the viewer leaves while waiting for the publisher', async () => {
    const lease = countingLease();
    const { hub, url, stop } = await serve(60_000, () => Promise.resolve(lease));
    const viewer = new AbortController();
    const res = fetch(url('/live/cam.flv'), { signal: viewer.signal });
    await vi.waitFor(() => expect(hub.awaited(streamId('live', 'cam'))).toBe(true), { timeout: 10_000 });
    viewer.abort();
    await expect(res).rejects.toThrow();
    await vi.waitFor(() => expect(hub.awaited(streamId('live', 'cam'))).toBe(false), { timeout: 10_000 });
    await stop();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('gives back a lease granted after the viewer left, once, and does not wait for the publisher then', async () => {
    const lease = countingLease();
    let asked!: () => void;
    const authorizing = new Promise<void>((resolve) => (asked = resolve));
    // The check answers only once the viewer has gone, as a slow callback would.
    const authorizePlay = async (_ctx: unknown, _app: string, _key: string, signal: AbortSignal) => {
      asked();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return lease;
    };
    const { hub, url, stop } = await serve(60_000, authorizePlay);
    const viewer = new AbortController();
    const res = fetch(url('/live/cam.flv'), { signal: viewer.signal });
    await authorizing;
    viewer.abort();
    await expect(res).rejects.toThrow();
    await vi.waitFor(() => expect(lease.released).toBe(1), { timeout: 10_000 });
    expect(hub.awaited(streamId('live', 'cam'))).toBe(false);
    await stop();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('answers a HEAD without subscribing a player, and gives its lease back once', async () => {
    const lease = countingLease();
    const { hub, url, stop } = await serve(0, () => Promise.resolve(lease));
    const { stream } = await publishFlv(hub, 'live', 'cam', clip);
    const unsubscribe = vi.spyOn(stream, 'unsubscribe');
    const res = await fetch(url('/live/cam.flv'), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/x-flv');
    await stop();
    expect(unsubscribe).not.toHaveBeenCalled();
    expect(lease).toMatchObject({ attached: 0, released: 1 });
  });

  it('attaches the lease to a viewer that plays, and gives it back once, unsubscribed, when it leaves', async () => {
    const lease = countingLease();
    const { hub, url, stop } = await serve(0, () => Promise.resolve(lease));
    const { stream } = await publishFlv(hub, 'live', 'cam', clip);
    const res = await fetch(url('/live/cam.flv'));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect(Buffer.from((await reader.read()).value!.subarray(0, 3)).toString()).toBe('FLV');
    expect(stream.subscriberCount).toBe(1);
    await reader.cancel();
    await vi.waitFor(() => expect(stream.subscriberCount).toBe(0), { timeout: 10_000 });
    await stop();
    expect(lease).toMatchObject({ attached: 1, released: 1 });
  });
});

describe('an HTTP-FLV viewer that stops reading', () => {
  it('queues its tags in a tick writer instead of a Node write each, and sends them all, in order, once it reads again', async () => {
    let answer: (res: ServerResponse) => void = () => undefined;
    const response = new Promise<ServerResponse>((resolve) => (answer = resolve));
    const server = createServer((_req, res) => answer(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    cleanup = async () => {
      client.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    };
    client.pause();
    client.write('GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n');
    const res = await response;
    const player = new FlvResponse(res, new SocketIo());
    player.begin({} as Stream);
    // Keyframes until the kernel's buffers are full and Node's queue stays behind.
    let videos = 0;
    while (player.pendingBytes() < 1024 * 1024) {
      player.write(new MediaPacket('video', videos++, Buffer.alloc(64 * 1024, 0x17), 0, PacketFlag.keyframe));
      await new Promise((resolve) => setImmediate(resolve));
    }
    // 10,000 audio tags of 24 bytes, none a Node write of its own (a chunk of a few hundred bytes of objects each): the writer batches them.
    const write = vi.spyOn(res, 'write');
    for (let i = 0; i < 10_000; i++) player.write(new MediaPacket('audio', videos + i, Buffer.alloc(9, 0xaf), 0));
    expect(write).not.toHaveBeenCalled();
    expect(player.pendingBytes()).toBeGreaterThanOrEqual(res.writableLength + 10_000 * 24);
    // Read again: every tag arrives, in order, and the response ends after the last.
    player.close('unpublished');
    client.resume();
    let http = Buffer.alloc(0);
    // The connection stays open (keep-alive) after the response's last chunk.
    for await (const chunk of client as AsyncIterable<Buffer>) {
      http = Buffer.concat([http, chunk]);
      if (http.subarray(-5).toString() === '0\r\n\r\n') break;
    }
    const body = dechunk(http.subarray(http.indexOf('\r\n\r\n') + 4));
    const tags = new FlvDemuxer().push(body);
    expect(tags.map((t) => t.timestamp)).toEqual(Array.from({ length: videos + 10_000 }, (_, i) => i));
  });
});

/** The body of a chunked HTTP/1.1 response. */
function dechunk(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; ;) {
    const line = bytes.indexOf('\r\n', at);
    const size = parseInt(bytes.toString('latin1', at, line), 16);
    if (size === 0) return Buffer.concat(parts);
    parts.push(bytes.subarray(line + 2, line + 2 + size));
    at = line + 2 + size + 2;
  }
}

describe('HTTP-FLV answers', () => {
  it('announces both tracks in the FLV header of a stream whose sequence headers have not come yet', async () => {
    const { hub, url } = await serve(0, undefined);
    hub.publish('live', 'cam', { protocol: 'rtmp', remoteAddress: '127.0.0.1', close: () => undefined });
    const res = await fetch(url('/live/cam.flv'));
    const reader = res.body!.getReader();
    let head = Buffer.alloc(0);
    while (head.length < 13) head = Buffer.concat([head, (await reader.read()).value!]);
    await reader.cancel();
    // TypeFlags: 0x04 audio, 0x01 video.
    expect(head.subarray(0, 5)).toEqual(Buffer.from([0x46, 0x4c, 0x56, 1, 0x05]));
  });

  it('answers a path under a reserved app as no route, not as a stream name', async () => {
    const { url } = await serve(0, undefined);
    const res = await fetch(url('/metrics/cam.flv'));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'no route for GET /metrics/cam.flv' } });
  });

  it('cuts the answer of a viewer closed for an error, which a clean end would pass off as the stream ending', async () => {
    const { hub, url } = await serve(0, undefined);
    const stream = hub.publish('live', 'cam', { protocol: 'rtmp', remoteAddress: '127.0.0.1', close: () => undefined });
    const res = await fetch(url('/live/cam.flv'));
    const reader = res.body!.getReader();
    await reader.read();
    stream.end('error');
    const readToEnd = async () => {
      while (!(await reader.read()).done);
    };
    await expect(readToEnd()).rejects.toThrow();
  });
});
