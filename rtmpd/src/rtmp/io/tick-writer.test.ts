import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChunkReader } from '../wire/chunk-reader.ts';
import { flvTag } from '../../flv/mux.ts';
import { serializeMessage } from '../wire/chunk-writer.ts';
import { FLV_FRAMING, TickWriter, WriteTick } from './tick-writer.ts';

/** The stream that the tests' shared messages come from (its run state is per tick). */
const stream = {};

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A connected pair: `writer` writes on one end, `peer` is the other end, paused until read. */
async function socketPair(): Promise<{ socket: Socket; peer: Socket; tick: WriteTick }> {
  const server: Server = createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const { port } = server.address() as { port: number };
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const peer = await accepted;
  cleanups.push(() => {
    socket.destroy();
    peer.destroy();
    server.close();
  });
  return { socket, peer, tick: new WriteTick() };
}

function readAll(peer: Socket, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve) => {
    peer.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= length) resolve(Buffer.concat(chunks));
    });
    peer.resume();
  });
}

/** `b` is `a`'s range of the same buffer: the bytes went to both sockets uncopied. */
function expectSameRange(a: Buffer, b: Buffer): void {
  expect(b.buffer).toBe(a.buffer);
  expect(b.byteOffset).toBe(a.byteOffset);
}

/** The peer receives `messages`, in order. */
async function expectReceived(peer: Socket, messages: Buffer[]): Promise<void> {
  const expected = Buffer.concat(messages);
  expect((await readAll(peer, expected.length)).equals(expected)).toBe(true);
}

interface WritableHandle {
  writeBuffer(request: object, bytes: Uint8Array): number;
}

/**
 * Calls `record` with the buffers handed to the socket's handle, as they are
 * handed: what the writer writes to the handle itself and what goes through
 * socket.write both end there.
 */
function onHandleWrite(socket: Socket, record: (bytes: Buffer) => void): void {
  const handle = (socket as unknown as { _handle: WritableHandle })._handle;
  const writeBuffer = handle.writeBuffer.bind(handle);
  handle.writeBuffer = (request, bytes) => (record(bytes as Buffer), writeBuffer(request, bytes));
}

/** The lengths of the socket's writes, as they are made. */
function recordWrites(socket: Socket): number[] {
  const writes: number[] = [];
  onHandleWrite(socket, (bytes) => writes.push(bytes.length));
  return writes;
}

/** The buffers handed to the socket, as they were handed. */
function recordChunks(socket: Socket): Buffer[] {
  const chunks: Buffer[] = [];
  onHandleWrite(socket, (bytes) => chunks.push(bytes));
  return chunks;
}

/** Writes until the kernel takes no more, so later writes queue. */
function fillKernel(writer: TickWriter): number {
  let written = 0;
  while (writer.pendingBytes === 0) {
    writer.write(part(3, 60_000));
    written += 60_000;
    writer.flush();
  }
  return written;
}

/** Distinct bytes per part, so a reorder or a reused buffer shows. */
const part = (seed: number, length: number) => Buffer.from(Array.from({ length }, (_, i) => (seed * 31 + i) & 0xff));

describe('TickWriter', () => {
  it('sends the parts of one tick as one write, in order', async () => {
    const { socket, peer, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    const parts = [part(1, 12), part(2, 3000), part(3, 7)];
    const writes = recordWrites(socket);
    for (const p of parts) writer.write(p);
    expect(writer.pendingBytes).toBe(3019);
    await new Promise((r) => process.nextTick(r));
    expect(writes).toEqual([3019]);
    expect(await readAll(peer, 3019)).toEqual(Buffer.concat(parts));
  });

  it('keeps bytes intact when the peer does not read and later flushes reuse memory', async () => {
    const { socket, peer, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    const expected: Buffer[] = [];
    // Enough to fill the kernel's buffers (loopback takes megabytes), so
    // writes queue in Node and hold their memory.
    let queuedInNode = 0;
    for (let tick = 0; tick < 2000; tick++) {
      for (let i = 0; i < 4; i++) {
        const p = part(tick * 4 + i, 1000 + ((tick * 37 + i * 11) % 9000));
        expected.push(p);
        writer.write(p);
      }
      writer.flush();
      if (writer.pendingBytes > 0) queuedInNode++;
    }
    expect(queuedInNode).toBeGreaterThan(100);
    // A tick larger than any pooled batch gets a buffer of its own.
    const big = [part(9001, 200_000), part(9002, 100_000)];
    for (const p of big) writer.write(p);
    expected.push(...big);
    writer.flush();
    expect(writer.pendingBytes).toBeGreaterThan(300_000);
    await expectReceived(peer, expected);
  });

  it('writes RTMP messages as chunks, copying the body at once', async () => {
    const { socket, peer, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    // One chunk; three chunks with an extended timestamp; an empty body.
    const messages = [
      { csid: 6, typeId: 9, streamId: 1, timestamp: 40, body: part(7, 900) },
      { csid: 7, typeId: 8, streamId: 1, timestamp: 0x1234567, body: part(8, 2500) },
      { csid: 5, typeId: 18, streamId: 1, timestamp: 80, body: Buffer.alloc(0) },
    ];
    const expected = messages.map((m) => serializeMessage(m.csid, m.typeId, m.streamId, m.timestamp, m.body, 1000));
    for (const m of messages) {
      const reused = Buffer.from(m.body);
      expect(writer.writeMessage(m.csid, m.typeId, m.streamId, m.timestamp, reused, 1000)).toBe(expected[messages.indexOf(m)]!.length);
      reused.fill(0xee); // a borrowed read buffer, overwritten by the next read
    }
    const wire = await readAll(peer, Buffer.concat(expected).length);
    expect(wire.equals(Buffer.concat(expected))).toBe(true);
    const parsed: { typeId: number; timestamp: number; body: Buffer }[] = [];
    const reader = new ChunkReader((typeId, _streamId, timestamp, body) => parsed.push({ typeId, timestamp, body }));
    reader.chunkSize = 1000;
    reader.push(wire);
    expect(parsed.map((m) => [m.typeId, m.timestamp, m.body.length])).toEqual(messages.map((m) => [m.typeId, m.timestamp, m.body.length]));
    parsed.forEach((m, i) => expect(m.body.equals(messages[i]!.body)).toBe(true));
  });

  it('counts what the kernel has not taken in pendingBytes until it is written, and emits drain after saying full', async () => {
    const { socket, peer, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    const written = fillKernel(writer);
    // The flush the kernel could not take waits in libuv; later ones queue in the socket behind it.
    expect(writer.pendingBytes).toBe(60_000);
    expect(socket.writableLength).toBe(0);
    writer.write(part(1, 30_000));
    expect(writer.pendingBytes).toBe(90_000);
    writer.flush();
    expect(socket.writableLength).toBe(30_000);
    expect(writer.pendingBytes).toBe(90_000);
    expect(writer.full).toBe(true);
    const drained = new Promise((resolve) => socket.once('drain', resolve));
    const wire = await readAll(peer, written + 30_000);
    expect(wire.subarray(written).equals(part(1, 30_000))).toBe(true);
    await drained;
    expect(writer.pendingBytes).toBe(0);
  });

  it('sends what the handling of a read wrote when it ends, even when it throws', async () => {
    const { socket, peer, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    const writes = recordWrites(socket);
    tick.handleRead({ receive: (bytes) => writer.write(bytes) }, part(1, 100));
    expect(writes).toEqual([100]); // before any tick
    const failing = {
      receive: (bytes: Buffer) => {
        writer.write(bytes);
        throw new Error('handler bug');
      },
    };
    expect(() => tick.handleRead(failing, part(2, 50))).toThrow('handler bug');
    expect(writes).toEqual([100, 50]);
    // Writes outside a read still go out at the end of the tick.
    writer.write(part(3, 7));
    expect(writes).toEqual([100, 50]);
    await new Promise((r) => process.nextTick(r));
    expect(writes).toEqual([100, 50, 7]);
    expect(await readAll(peer, 157)).toEqual(Buffer.concat([part(1, 100), part(2, 50), part(3, 7)]));
  });

  it('end() sends what was queued before ending', async () => {
    const { socket, peer, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    expect(writer.write(part(5, 100))).toBe(100);
    writer.write(part(6, 50));
    writer.end();
    // Dropped, and said so: nothing follows the end.
    expect(writer.write(part(7, 10))).toBe(0);
    expect(writer.writeMessage(6, 9, 1, 0, part(8, 10), 128)).toBe(0);
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      peer.on('data', (d: Buffer) => chunks.push(d));
      peer.on('end', () => resolve(Buffer.concat(chunks)));
      peer.resume();
    });
    expect(received).toEqual(Buffer.concat([part(5, 100), part(6, 50)]));
  });

  it('serializes a message shared by many writers once, sends it uncopied where it is all a writer sends, and reuses its buffer after the flush', async () => {
    const pairs = await Promise.all([socketPair(), socketPair(), socketPair()]);
    const tick = new WriteTick();
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const sent = pairs.map(({ socket }) => recordChunks(socket));
    const packet = {};
    const body = part(4, 2500);
    const expected = serializeMessage(6, 9, 1, 40, body, 4096);
    tick.handleRead(
      {
        receive: () => {
          for (const w of writers)
            expect(w.writeShared(packet, tick.sourceOf(stream, 4096), 6, 9, 1, 40, body, 4096)).toBe(expected.length);
          // The third writer sends a control message as well: its tick goes out as one batch.
          writers[2]!.write(part(9, 12));
          expect(writers[2]!.pendingBytes).toBe(expected.length + 12);
        },
      },
      Buffer.alloc(0),
    );
    const [a, b, c] = sent.map((chunks) => chunks[0]!);
    expect(a!.equals(expected)).toBe(true);
    // The same bytes, not a copy.
    expectSameRange(a!, b!);
    expect(c!.equals(Buffer.concat([expected, part(9, 12)]))).toBe(true);
    for (const [i, { peer }] of pairs.entries()) await expectReceived(peer, [sent[i]![0]!]);
    // Taken whole by every socket, so the next packet is serialized into the same pooled buffer.
    const next = {};
    tick.handleRead(
      { receive: () => writers[0]!.writeShared(next, tick.sourceOf(stream, 4096), 6, 9, 1, 80, part(5, 2500), 4096) },
      Buffer.alloc(0),
    );
    expect(sent[0]![1]!.buffer).toBe(a!.buffer);
  });

  it('serializes a burst once for the writers that join in ticks of their own, sends it uncopied, and reuses its buffer once it is replaced', async () => {
    const pairs = await Promise.all([socketPair(), socketPair(), socketPair()]);
    const tick = new WriteTick(40, 1);
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const sent = pairs.map(({ socket }) => recordChunks(socket));
    const bodies = [part(11, 40), part(12, 30_000), part(13, 900)];
    const burstOf = (timestamp: number) =>
      vi.fn(() => bodies.map((body, i) => ({ csid: 0, typeId: 9, streamId: 0, timestamp: timestamp + i, body })));
    const chunked = (timestamp: number) =>
      Buffer.concat(
        bodies.map((body, i) => {
          const tag = flvTag('video', timestamp + i, body);
          return Buffer.concat([Buffer.from(`${tag.length.toString(16)}\r\n`), tag, Buffer.from('\r\n')]);
        }),
      );
    const key = { replaced: false };
    const messages = burstOf(100);
    // Each player joins in a read of its own (its request), as HTTP-FLV players do.
    for (const w of writers)
      tick.handleRead({ receive: () => w.writeSharedBurst(key, w.sourceOf(stream, FLV_FRAMING.httpChunk), messages) }, Buffer.alloc(0));
    expect(messages).toHaveBeenCalledTimes(1);
    const [a, b, c] = sent.map((chunks) => chunks[0]!);
    expect(sent.map((chunks) => chunks.length)).toEqual([1, 1, 1]);
    expect(a!.equals(chunked(100))).toBe(true);
    for (const other of [b!, c!]) expectSameRange(a!, other);
    for (const { peer } of pairs) await expectReceived(peer, [chunked(100)]);
    // Replaced (the stream had a packet): the next joiner's burst is serialized anew, into the buffer the old one gave back.
    key.replaced = true;
    tick.handleRead({ receive: () => {} }, Buffer.alloc(0));
    const next = burstOf(200);
    const w = writers[0]!;
    tick.handleRead(
      { receive: () => w.writeSharedBurst({ replaced: false }, w.sourceOf(stream, FLV_FRAMING.httpChunk), next) },
      Buffer.alloc(0),
    );
    expect(next).toHaveBeenCalledTimes(1);
    expect(sent[0]![1]!.equals(chunked(200))).toBe(true);
    expect(sent[0]![1]!.buffer).toBe(a!.buffer);
  });

  it('sends shared messages that follow one another in a tick (a frame and its audio) as one uncopied range', async () => {
    const pairs = await Promise.all([socketPair(), socketPair()]);
    const tick = new WriteTick();
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const sent = pairs.map(({ socket }) => recordChunks(socket));
    const [video, audio] = [{}, {}];
    const [videoBody, audioBody] = [part(4, 2500), part(5, 300)];
    const expected = Buffer.concat([serializeMessage(6, 9, 1, 40, videoBody, 4096), serializeMessage(4, 8, 1, 40, audioBody, 4096)]);
    tick.handleRead(
      {
        receive: () => {
          for (const w of writers) w.writeShared(video, tick.sourceOf(stream, 4096), 6, 9, 1, 40, videoBody, 4096);
          for (const w of writers) w.writeShared(audio, tick.sourceOf(stream, 4096), 4, 8, 1, 40, audioBody, 4096);
          expect(writers[0]!.pendingBytes).toBe(expected.length);
        },
      },
      Buffer.alloc(0),
    );
    const [a, b] = sent.map((chunks) => chunks[0]!);
    expect(sent.map((chunks) => chunks.length)).toEqual([1, 1]);
    expect(a!.equals(expected)).toBe(true);
    expectSameRange(a!, b!);
    for (const { peer } of pairs) await expectReceived(peer, [expected]);
  });

  it('sends every shared message of a tick that outgrew its first buffer, in order, and tick after tick', async () => {
    const pairs = await Promise.all([socketPair(), socketPair()]);
    const tick = new WriteTick();
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const expected = [Buffer.alloc(0), Buffer.alloc(0)];
    // Three 3000-byte messages a tick: the third does not fit the buffer sized for the first two.
    for (let at = 0; at < 3; at++) {
      const bodies = [0, 1, 2].map((i) => part(at * 3 + i, 3000));
      tick.handleRead(
        {
          receive: () => {
            for (const [i, body] of bodies.entries())
              for (const w of writers) w.writeShared(bodies[i]!, tick.sourceOf(stream, 4096), 6, 9, 1, at, body, 4096);
          },
        },
        Buffer.alloc(0),
      );
      const wire = Buffer.concat(bodies.map((body) => serializeMessage(6, 9, 1, at, body, 4096)));
      for (const i of [0, 1]) expected[i] = Buffer.concat([expected[i]!, wire]);
    }
    for (const [i, { peer }] of pairs.entries()) await expectReceived(peer, [expected[i]!]);
  });

  it('does not reuse a shared buffer that a socket still holds', async () => {
    const { socket, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    fillKernel(writer);
    const writes = recordWrites(socket);
    const held = recordChunks(socket);
    const body = part(6, 2500);
    tick.handleRead({ receive: () => writer.writeShared({}, tick.sourceOf(stream, 4096), 6, 9, 1, 40, body, 4096) }, Buffer.alloc(0));
    expect(writes).toHaveLength(1);
    expect(writer.pendingBytes).toBe(60_000 + socket.writableLength);
    // The next tick's message would be serialized where the held one lies, were its buffer reused.
    tick.handleRead(
      { receive: () => writer.writeShared({}, tick.sourceOf(stream, 4096), 6, 9, 1, 80, part(7, 2500), 4096) },
      Buffer.alloc(0),
    );
    expect(held[0]!.equals(serializeMessage(6, 9, 1, 40, body, 4096))).toBe(true);
  });

  it('does not reuse a shared buffer that the handle still holds', async () => {
    const { socket, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    const held = recordChunks(socket);
    let at = 0;
    // Shared messages until the kernel takes no more: the last one waits in libuv, uncopied.
    while (writer.pendingBytes === 0) {
      at += 40;
      tick.handleRead(
        { receive: () => writer.writeShared({}, tick.sourceOf(stream, 60_000), 6, 9, 1, at, part(at, 50_000), 60_000) },
        Buffer.alloc(0),
      );
    }
    expect(socket.writableLength).toBe(0);
    const waiting = held.at(-1)!;
    const copy = Buffer.from(waiting);
    tick.handleRead(
      { receive: () => writer.writeShared({}, tick.sourceOf(stream, 60_000), 6, 9, 1, at + 40, part(1, 50_000), 60_000) },
      Buffer.alloc(0),
    );
    expect(held.at(-1)!.buffer).not.toBe(waiting.buffer);
    expect(waiting.equals(copy)).toBe(true);
  });

  it('destroys the socket with the error when a write fails', async () => {
    const { socket, peer, tick } = await socketPair();
    const writer = new TickWriter(socket, tick);
    const failed = new Promise<Error>((resolve) => socket.once('error', resolve));
    peer.resetAndDestroy();
    // The reset arrives after a write or two; a write after it fails.
    while (!socket.destroyed) {
      writer.write(part(2, 1000));
      writer.flush();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(((await failed) as NodeJS.ErrnoException).code).toMatch(/^(EPIPE|ECONNRESET)$/);
  });
});

describe('TickWriter with a media write interval', () => {
  afterEach(() => void vi.useRealTimers());

  /** Runs `write` as the handling of one socket read, as a publisher's read fans out. */
  const inRead = (tick: WriteTick, write: () => void) => tick.handleRead({ receive: write }, Buffer.alloc(0));
  const frame = (writer: TickWriter, key: object, timestamp: number, body: Buffer, from: object = stream) =>
    writer.writeShared(key, writer.sourceOf(from, 4096), 6, 9, 1, timestamp, body, 4096);

  it('sends shared media at once after a quiet interval, then merges what follows until the interval has passed', async () => {
    const { socket, peer } = await socketPair();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const tick = new WriteTick(50);
    const writer = new TickWriter(socket, tick);
    const writes = recordWrites(socket);
    const bodies = [part(1, 2500), part(2, 300), part(3, 2400), part(4, 310)];
    const wire = bodies.map((body, i) => serializeMessage(6, 9, 1, i * 20, body, 4096));
    inRead(tick, () => frame(writer, {}, 0, bodies[0]!));
    expect(writes).toEqual([wire[0]!.length]);
    vi.advanceTimersByTime(20);
    inRead(tick, () => frame(writer, {}, 20, bodies[1]!));
    vi.advanceTimersByTime(20);
    inRead(tick, () => frame(writer, {}, 40, bodies[2]!));
    // Kept, and counted as the player's queue.
    expect(writes).toEqual([wire[0]!.length]);
    expect(writer.pendingBytes).toBe(wire[1]!.length + wire[2]!.length);
    // 50 ms after the first flush, not later: both leave in one write.
    vi.advanceTimersByTime(9);
    expect(writes).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(writes).toEqual([wire[0]!.length, wire[1]!.length + wire[2]!.length]);
    expect(writer.pendingBytes).toBe(0);
    // The next 50 ms start at that flush.
    vi.advanceTimersByTime(10);
    inRead(tick, () => frame(writer, {}, 60, bodies[3]!));
    expect(writes).toHaveLength(2);
    vi.advanceTimersByTime(40);
    expect(writes).toHaveLength(3);
    vi.useRealTimers();
    await expectReceived(peer, wire);
  });

  it('sends at the end of the tick what is not shared media, with the media kept before it, and 64 KiB of media at once', async () => {
    const { socket, peer } = await socketPair();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const tick = new WriteTick(1000);
    const writer = new TickWriter(socket, tick);
    const writes = recordWrites(socket);
    const first = serializeMessage(6, 9, 1, 0, part(1, 100), 4096);
    const kept = serializeMessage(6, 9, 1, 40, part(2, 200), 4096);
    const reply = part(3, 30);
    inRead(tick, () => frame(writer, {}, 0, part(1, 100)));
    inRead(tick, () => frame(writer, {}, 40, part(2, 200)));
    expect(writes).toEqual([first.length]);
    // A reply (a status, a ping response) is not held: it takes the kept media with it, in order.
    inRead(tick, () => writer.write(reply));
    expect(writes).toEqual([first.length, kept.length + reply.length]);
    // Media that reaches 64 KiB leaves without waiting for the interval.
    const keyframe = serializeMessage(6, 9, 1, 80, part(4, 70_000), 4096);
    inRead(tick, () => frame(writer, {}, 80, part(4, 70_000)));
    expect(writes).toEqual([first.length, kept.length + reply.length, keyframe.length]);
    vi.useRealTimers();
    await expectReceived(peer, [first, kept, reply, keyframe]);
  });

  it("merges a stream's messages for its players in one uncopied range of the shared buffer, kept until the merge flush", async () => {
    const pairs = await Promise.all([socketPair(), socketPair()]);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const tick = new WriteTick(30);
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const sent = pairs.map(({ socket }) => recordChunks(socket));
    const bodies = Array.from({ length: 5 }, (_, i) => part(10 + i, 1500 + i * 100));
    const wire = bodies.map((body, i) => serializeMessage(6, 9, 1, i * 10, body, 4096));
    // The first leaves at once; the next two wait for the timer, 30 ms after it; the last two likewise.
    for (const [i, body] of bodies.entries()) {
      const key = {};
      inRead(tick, () => writers.forEach((w) => frame(w, key, i * 10, body)));
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(30);
    vi.useRealTimers();
    expect(sent.map((chunks) => chunks.map((c) => c.length))).toEqual(
      Array(2).fill([wire[0]!.length, wire[1]!.length + wire[2]!.length, wire[3]!.length + wire[4]!.length]),
    );
    // The same bytes, not a copy per player (reused since, once the kernel took them).
    const [a, b] = sent.map((chunks) => chunks[1]!);
    expectSameRange(a!, b!);
    for (const { peer } of pairs) await expectReceived(peer, wire);
  });

  it("keeps each merging stream's messages in a run of its own, so streams that merge at once leave uncopied", async () => {
    const pairs = await Promise.all([socketPair(), socketPair(), socketPair(), socketPair()]);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const tick = new WriteTick(30, 2);
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const sent = pairs.map(({ socket }) => recordChunks(socket));
    // Two streams of two players, whose frames arrive in turn (a read each).
    const streams = [
      { from: {}, players: writers.slice(0, 2), seed: 30 },
      { from: {}, players: writers.slice(2), seed: 60 },
    ];
    const wire = streams.map(({ seed }) =>
      Array.from({ length: 3 }, (_, i) => serializeMessage(6, 9, 1, i * 10, part(seed + i, 1000 + i * 100), 4096)),
    );
    for (let i = 0; i < 3; i++) {
      for (const { from, players, seed } of streams) {
        const key = {};
        inRead(tick, () => players.forEach((w) => frame(w, key, i * 10, part(seed + i, 1000 + i * 100), from)));
      }
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(10);
    vi.useRealTimers();
    // The first frame at once, the next two merged: one range per stream, the same bytes for both its players.
    for (const [s, chunks] of sent.entries()) {
      const [first, second, third] = wire[Math.floor(s / 2)]!;
      expect(chunks.map((c) => c.length)).toEqual([first!.length, second!.length + third!.length]);
    }
    expectSameRange(sent[0]![1]!, sent[1]![1]!);
    expectSameRange(sent[2]![1]!, sent[3]![1]!);
    for (const [i, { peer }] of pairs.entries()) await expectReceived(peer, wire[Math.floor(i / 2)]!);
  });

  it('flushes each player at its own deadline, and keeps a shared run until the last player holding it has flushed', async () => {
    const pairs = await Promise.all([socketPair(), socketPair()]);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    vi.advanceTimersByTime(Math.ceil(performance.now()) - performance.now());
    const tick = new WriteTick(30);
    const [a, b] = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const [sentA, sentB] = pairs.map(({ socket }) => recordChunks(socket));
    const bodies = Array.from({ length: 3 }, (_, i) => part(20 + i, 1200 + i * 100));
    const wire = bodies.map((body, i) => serializeMessage(6, 9, 1, i * 10, body, 4096));
    // a's interval starts now, b's 15 ms later.
    inRead(tick, () => frame(a!, {}, 0, bodies[0]!));
    vi.advanceTimersByTime(15);
    inRead(tick, () => frame(b!, {}, 0, bodies[0]!));
    vi.advanceTimersByTime(5);
    // The same frame for both, serialized once: a may send it 30 ms after its last write, b 30 ms after its own.
    const shared = {};
    inRead(tick, () => [a!, b!].forEach((w) => frame(w, shared, 10, bodies[1]!)));
    vi.advanceTimersByTime(9);
    expect([sentA!.length, sentB!.length]).toEqual([1, 1]);
    vi.advanceTimersByTime(1);
    expect([sentA!.length, sentB!.length]).toEqual([2, 1]);
    const run = sentA![1]!.buffer;
    // a's next frame follows on in the same run, after the bytes b still waits to send.
    inRead(tick, () => frame(a!, {}, 20, bodies[2]!));
    expect(sentA![1]).toEqual(wire[1]);
    // The run is b's until b has flushed: the pool does not hand it out.
    expect(tick.takeBatch(run.byteLength).buffer).not.toBe(run);
    vi.advanceTimersByTime(14);
    expect(sentB!.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(sentB!.length).toBe(2);
    // b sent its range of the same run, uncopied.
    expectSameRange(sentA![1]!, sentB![1]!);
    expect(sentB![1]).toEqual(wire[1]);
    // a flushes at its own deadline (30 ms after its last flush); then nothing holds the run, and it goes back to the pool.
    vi.advanceTimersByTime(15);
    expect(sentA!.length).toBe(3);
    expect(sentA![2]).toEqual(wire[2]);
    expect(tick.takeBatch(run.byteLength).buffer).toBe(run);
    vi.useRealTimers();
    await expectReceived(pairs[0]!.peer, wire);
    await expectReceived(pairs[1]!.peer, wire.slice(0, 2));
  });
  it("keeps a merging stream's next frames in its own run, so a small frame and a larger one after it wait in one range", async () => {
    const pairs = await Promise.all([socketPair(), socketPair()]);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const tick = new WriteTick(30, 2);
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const sent = pairs.map(({ socket }) => recordChunks(socket));
    // A frame both leave with at once (nothing waits after it, so its run is let go),
    // then an audio frame whose run would otherwise be made for it, then a video frame.
    const bodies = [part(50, 1500), part(51, 200), part(52, 5000)];
    const wire = bodies.map((body, i) => serializeMessage(6, 9, 1, i * 10, body, 4096));
    for (const [i, body] of bodies.entries()) {
      const key = {};
      inRead(tick, () => writers.forEach((w) => frame(w, key, i * 10, body)));
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(10);
    vi.useRealTimers();
    expect(sent.map((chunks) => chunks.map((c) => c.length))).toEqual(Array(2).fill([wire[0]!.length, wire[1]!.length + wire[2]!.length]));
    // One range of one run for both players, not a copy of the audio frame and the video frame into a batch each.
    const [a, b] = sent.map((chunks) => chunks[1]!);
    expectSameRange(a!, b!);
    for (const { peer } of pairs) await expectReceived(peer, wire);
  });

  it('merges only media that at least the minimum of writers send, and writes a smaller fan-out at the end of its tick', async () => {
    const pairs = await Promise.all([socketPair(), socketPair(), socketPair()]);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const tick = new WriteTick(30, 2);
    const [alone, a, b] = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const aloneStream = {};
    const [sentAlone, sentA, sentB] = pairs.map(({ socket }) => recordWrites(socket));
    const bodies = Array.from({ length: 3 }, (_, i) => part(40 + i, 900 + i * 100));
    const wire = bodies.map((body, i) => serializeMessage(6, 9, 1, i * 10, body, 4096));
    for (const [i, body] of bodies.entries()) {
      // A stream with one player, and another whose frame goes to two.
      inRead(tick, () => frame(alone!, {}, i * 10, body, aloneStream));
      const shared = {};
      inRead(tick, () => [a!, b!].forEach((w) => frame(w, shared, i * 10, body)));
      if (i < 2) vi.advanceTimersByTime(10);
    }
    expect(sentAlone).toEqual(wire.map((w) => w.length));
    // The first frame leaves at once, the next two wait for the interval.
    vi.advanceTimersByTime(9);
    for (const sent of [sentA, sentB]) expect(sent).toEqual([wire[0]!.length]);
    vi.advanceTimersByTime(1);
    for (const sent of [sentA, sentB]) expect(sent).toEqual([wire[0]!.length, wire[1]!.length + wire[2]!.length]);
    vi.useRealTimers();
    for (const { peer } of pairs) await expectReceived(peer, wire);
  });

  it("counts a stream's players whatever their framing, and serializes each framing's message once while they take turns", async () => {
    const pairs = await Promise.all([socketPair(), socketPair(), socketPair(), socketPair()]);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    // Four players of one stream, two over RTMP and two over HTTP-FLV, joined in turn: neither protocol's two reach the minimum.
    const tick = new WriteTick(30, 4);
    const writers = pairs.map(({ socket }) => new TickWriter(socket, tick));
    const framings = [4096, FLV_FRAMING.httpChunk, 4096, FLV_FRAMING.httpChunk];
    const sources = writers.map((w, i) => w.sourceOf(stream, framings[i]!));
    const sent = pairs.map(({ socket }) => recordChunks(socket));
    const bodies = Array.from({ length: 3 }, (_, i) => part(70 + i, 1300 + i * 100));
    const rtmp = bodies.map((body, i) => serializeMessage(6, 9, 1, i * 10, body, 4096));
    const flv = bodies.map((body, i) => {
      const tag = flvTag('video', i * 10, body);
      return Buffer.concat([Buffer.from(`${tag.length.toString(16)}\r\n`), tag, Buffer.from('\r\n')]);
    });
    for (const [i, body] of bodies.entries()) {
      const key = {};
      inRead(tick, () => writers.forEach((w, p) => w.writeShared(key, sources[p]!, 6, 9, 1, i * 10, body, framings[p]!)));
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(10);
    vi.useRealTimers();
    // The first frame at once, the next two merged, for all four.
    const wire = [rtmp, flv, rtmp, flv];
    for (const [p, chunks] of sent.entries()) {
      const [first, second, third] = wire[p]!;
      expect(chunks.map((c) => c.length)).toEqual([first!.length, second!.length + third!.length]);
    }
    // Each framing's range once, the same bytes for both its players.
    expectSameRange(sent[0]![1]!, sent[2]![1]!);
    expectSameRange(sent[1]![1]!, sent[3]![1]!);
    for (const [p, { peer }] of pairs.entries()) await expectReceived(peer, wire[p]!);
  });
});
