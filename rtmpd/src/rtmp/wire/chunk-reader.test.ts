import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { BufferPool } from '../../memory/buffer-pool.ts';
import { ByteBudget } from '../../memory/byte-budget.ts';
import { ChunkReader, type ChunkReaderOptions } from './chunk-reader.ts';
import { serializeMessage } from './chunk-writer.ts';
import { parseCommand, parseData } from './commands.ts';
import { abortMessage, setChunkSize } from './control.ts';
import { RtmpProtocolError } from './errors.ts';
import { MessageType } from './message-types.ts';
import { prng, randomPieces } from '../../../test/support/random.ts';

interface Message {
  typeId: number;
  streamId: number;
  timestamp: number;
  body: Buffer;
}

function reader(options?: ChunkReaderOptions): { reader: ChunkReader; messages: Message[] } {
  const messages: Message[] = [];
  const r = new ChunkReader((typeId, streamId, timestamp, body) => messages.push({ typeId, streamId, timestamp, body }), options);
  return { reader: r, messages };
}

function parse(data: Buffer, pieceMax = 0, seed = 1): Message[] {
  const { reader: r, messages } = reader();
  if (pieceMax === 0) r.push(data);
  else for (const piece of randomPieces(data, prng(seed), pieceMax)) r.push(piece);
  return messages;
}

/** Builds a chunk header by hand: fmt, csid, then the fields the fmt carries. */
function header(fmt: number, csid: number, fields: { ts?: number; length?: number; typeId?: number; streamId?: number } = {}): Buffer {
  const parts: number[] = [];
  if (csid < 64) parts.push((fmt << 6) | csid);
  else if (csid < 320) parts.push(fmt << 6, csid - 64);
  else parts.push((fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8);
  const out = [Buffer.from(parts)];
  const ts = fields.ts ?? 0;
  const extended = ts >= 0xffffff;
  if (fmt <= 2) {
    const b = Buffer.alloc(3);
    b.writeUIntBE(extended ? 0xffffff : ts, 0, 3);
    out.push(b);
  }
  if (fmt <= 1) {
    const b = Buffer.alloc(4);
    b.writeUIntBE(fields.length ?? 0, 0, 3);
    b[3] = fields.typeId ?? 0;
    out.push(b);
  }
  if (fmt === 0) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(fields.streamId ?? 0, 0);
    out.push(b);
  }
  if (fmt <= 2 && extended) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(ts, 0);
    out.push(b);
  }
  return Buffer.concat(out);
}

describe('ChunkReader on a real FFmpeg publish session', () => {
  const capture = readFileSync(new URL('./testdata/ffmpeg-publish.bin', import.meta.url));
  const messages = parse(capture);

  it('decodes the command sequence FFmpeg sends', () => {
    const commands = messages.filter((m) => m.typeId === MessageType.commandAmf0).map((m) => parseCommand(m.typeId, m.body).name);
    expect(commands.slice(0, 5)).toEqual(['connect', 'releaseStream', 'FCPublish', 'createStream', 'publish']);
    const connect = parseCommand(MessageType.commandAmf0, messages.find((m) => m.typeId === MessageType.commandAmf0)!.body);
    expect(connect.object).toMatchObject({ app: 'live', type: 'nonprivate' });
    expect(String((connect.object as Record<string, unknown>).tcUrl)).toMatch(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  });

  it("applies FFmpeg's Set Chunk Size and decodes metadata and media", () => {
    expect(messages.some((m) => m.typeId === MessageType.setChunkSize)).toBe(true);
    const data = messages.find((m) => m.typeId === MessageType.dataAmf0)!;
    const values = parseData(data.typeId, data.body);
    expect(values[0]).toBe('@setDataFrame');
    expect(values[1]).toBe('onMetaData');
    expect(values[2]).toMatchObject({ width: 160, height: 120, videocodecid: 7, audiocodecid: 10 });
    const video = messages.filter((m) => m.typeId === MessageType.video);
    const audio = messages.filter((m) => m.typeId === MessageType.audio);
    expect(video.length).toBeGreaterThan(30);
    expect(audio.length).toBeGreaterThan(30);
    // AVC sequence header first (0x17 0x00), then NALUs; the keyframe bit on the first frame.
    expect([...video[0]!.body.subarray(0, 2)]).toEqual([0x17, 0x00]);
    expect([...video[1]!.body.subarray(0, 2)]).toEqual([0x17, 0x01]);
    expect([...audio[0]!.body.subarray(0, 2)]).toEqual([0xaf, 0x00]);
    // Absolute timestamps rise (fmt 1/2 deltas were accumulated) and span the 1.5 s capture.
    const ts = video.map((m) => m.timestamp);
    for (let i = 1; i < ts.length; i++) expect(ts[i]!).toBeGreaterThanOrEqual(ts[i - 1]! - 200); // B-frames off, DTS monotone-ish
    expect(ts.at(-1)!).toBeGreaterThan(1000);
    expect(video.every((m) => m.streamId === 1)).toBe(true);
  });

  it('gives the same messages however the bytes are cut', () => {
    for (const [max, seed] of [
      [1, 1],
      [7, 2],
      [300, 3],
      [5000, 4],
    ] as const) {
      const again = parse(capture, max, seed);
      expect(again.length).toBe(messages.length);
      again.forEach((m, i) => {
        expect(m.timestamp).toBe(messages[i]!.timestamp);
        expect(m.body.equals(messages[i]!.body)).toBe(true);
      });
    }
  });

  it('with borrowBodies, lends whole single-chunk messages as views of a reused read buffer and copies the rest', () => {
    // As the server reads: every piece lands in the same buffer, overwritten by the next read.
    const readBuffer = Buffer.alloc(4096);
    const seen: { timestamp: number; body: Buffer; borrowed: boolean }[] = [];
    const r = new ChunkReader(
      (_t, _s, timestamp, body) => seen.push({ timestamp, body: Buffer.from(body), borrowed: body.buffer === readBuffer.buffer }),
      { borrowBodies: true },
    );
    for (const piece of randomPieces(capture, prng(5), 4096)) {
      piece.copy(readBuffer);
      r.push(readBuffer.subarray(0, piece.length));
    }
    expect(seen.length).toBe(messages.length);
    seen.forEach((m, i) => {
      expect(m.timestamp).toBe(messages[i]!.timestamp);
      expect(m.body.equals(messages[i]!.body)).toBe(true);
    });
    // Both paths ran: small messages arrive whole, frames above FFmpeg's 4096-byte chunks do not.
    expect(seen.filter((m) => m.borrowed).length).toBeGreaterThan(10);
    expect(seen.filter((m) => !m.borrowed).length).toBeGreaterThan(10);
  });

  it('with a body pool, assembles the rest in pooled buffers that go back once handled, allocating nothing per message', () => {
    const readBuffer = Buffer.alloc(4096);
    const pool = new BufferPool(1 << 20);
    const taken = vi.spyOn(pool, 'take');
    const given = vi.spyOn(pool, 'give');
    const seen: Buffer[] = [];
    let assembled = 0;
    const r = new ChunkReader(
      (_t, _s, _ts, body) => {
        seen.push(Buffer.from(body));
        if (body.buffer === readBuffer.buffer) return;
        assembled++;
        // Lent, not given: the buffer goes back to the pool only after this call.
        expect(given).toHaveBeenCalledTimes(assembled - 1);
        expect(body.buffer.byteLength).toBeGreaterThanOrEqual(body.length);
      },
      { borrowBodies: true, bodyPool: pool },
    );
    const allocations = [vi.spyOn(Buffer, 'allocUnsafe'), vi.spyOn(Buffer, 'allocUnsafeSlow')];
    for (const piece of randomPieces(capture, prng(5), 4096)) {
      piece.copy(readBuffer);
      r.push(readBuffer.subarray(0, piece.length));
    }
    seen.forEach((body, i) => expect(body.equals(messages[i]!.body)).toBe(true));
    expect(assembled).toBeGreaterThan(10);
    expect(taken).toHaveBeenCalledTimes(assembled);
    expect(given).toHaveBeenCalledTimes(assembled);
    // Power-of-two buffers, reused: a handful of sizes for the whole session.
    for (const [size] of taken.mock.calls) expect(Math.log2(size) % 1).toBe(0);
    expect(allocations[1]!.mock.calls.length).toBeLessThan(8);
    expect(allocations[0]).not.toHaveBeenCalled();
    for (const spy of allocations) spy.mockRestore();
  });

  it('gives a partial pooled body back when it is aborted or the reader stops', () => {
    const pool = new BufferPool(1 << 20);
    const given = vi.spyOn(pool, 'give');
    const { reader: r } = reader({ borrowBodies: true, bodyPool: pool });
    r.push(Buffer.concat([header(0, 6, { ts: 0, length: 300, typeId: 9, streamId: 1 }), Buffer.alloc(128)]));
    r.push(abortMessage(6));
    expect(given).toHaveBeenCalledTimes(1);
    r.push(Buffer.concat([header(0, 7, { ts: 0, length: 300, typeId: 8, streamId: 1 }), Buffer.alloc(128)]));
    r.stop();
    expect(given).toHaveBeenCalledTimes(2);
    expect(r.bufferedBytes).toBe(0);
  });

  it('hands over a fresh buffer per message', () => {
    const bodies = new Set(messages.map((m) => m.body));
    expect(bodies.size).toBe(messages.length);
  });

  it("decodes rtmpdump's play request", () => {
    const play = parse(readFileSync(new URL('./testdata/rtmpdump-play.bin', import.meta.url)));
    const names = play.filter((m) => m.typeId === MessageType.commandAmf0).map((m) => parseCommand(m.typeId, m.body));
    expect(names.map((c) => c.name)).toContain('play');
    expect(names.find((c) => c.name === 'play')!.args[0]).toBe('cap2');
    // rtmpdump announces its buffer with SetBufferLength.
    expect(play.some((m) => m.typeId === MessageType.userControl && m.body.readUInt16BE(0) === 3)).toBe(true);
  });
});

describe('ChunkReader header formats', () => {
  it('accumulates fmt 1, 2 and 3 deltas into absolute timestamps', () => {
    const body = Buffer.from([1, 2, 3]);
    const data = Buffer.concat([
      header(0, 4, { ts: 1000, length: 3, typeId: 8, streamId: 1 }),
      body,
      header(1, 4, { ts: 20, length: 3, typeId: 8 }),
      body,
      header(2, 4, { ts: 30 }),
      body,
      header(3, 4),
      body, // a new message repeating the last delta
    ]);
    const messages = parse(data);
    expect(messages.map((m) => m.timestamp)).toEqual([1000, 1020, 1050, 1080]);
    expect(messages.every((m) => m.streamId === 1 && m.typeId === 8)).toBe(true);
  });

  it('decodes 1-, 2- and 3-byte chunk stream ids', () => {
    for (const csid of [2, 63, 64, 319, 320, 65599]) {
      const data = Buffer.concat([header(0, csid, { ts: 5, length: 2, typeId: 9, streamId: 1 }), Buffer.from([9, 9])]);
      expect(parse(data)).toHaveLength(1);
      // And what the writer produces for that id parses back.
      const written = serializeMessage(csid, 9, 1, 5, Buffer.alloc(300, 7), 128);
      const [m] = parse(written);
      expect(m!.body.equals(Buffer.alloc(300, 7))).toBe(true);
    }
  });

  it('reads the 3-byte chunk stream id low byte first: csid 100 in either form is one chunk stream', () => {
    // Ids 64..319 may be sent in either form; a reader that swapped the 3-byte form's bytes would read
    // [36, 0] as 9280, a fresh chunk stream, and refuse the continuation.
    const body = Buffer.alloc(200, 3);
    const data = Buffer.concat([
      header(0, 100, { length: 200, typeId: 9, streamId: 1 }),
      body.subarray(0, 128),
      Buffer.from([(3 << 6) | 1, 100 - 64, 0]), // fmt 3 continuation, csid 100 in the 3-byte form
      body.subarray(128),
    ]);
    const [m, ...rest] = parse(data);
    expect(rest).toEqual([]);
    expect(m!.body.equals(body)).toBe(true);
  });

  it('reads extended timestamps, including on fmt 3 continuation chunks', () => {
    const body = Buffer.alloc(300, 1);
    const written = serializeMessage(6, 9, 1, 0x01234567, body, 128);
    // 3 chunks: 1+11+4 + 128, (1+4) + 128, (1+4) + 44
    expect(written.length).toBe(16 + 128 + 5 + 128 + 5 + 44);
    for (const max of [0, 1, 3]) {
      const [m] = parse(written, max);
      expect(m!.timestamp).toBe(0x01234567);
      expect(m!.body.equals(body)).toBe(true);
    }
    // Continuations without the repeated extended timestamp, as some encoders write them.
    const bare = Buffer.concat([
      header(0, 6, { ts: 0x01234567, length: 300, typeId: 9, streamId: 1 }),
      body.subarray(0, 128),
      Buffer.from([0xc6]),
      body.subarray(128, 256),
      Buffer.from([0xc6]),
      body.subarray(256),
    ]);
    for (const max of [0, 1, 5]) {
      const [m] = parse(bare, max);
      expect(m!.timestamp).toBe(0x01234567);
      expect(m!.body.equals(body)).toBe(true);
    }
    // An extended delta on fmt 1.
    const data = Buffer.concat([
      header(0, 4, { ts: 1, length: 1, typeId: 8, streamId: 1 }),
      Buffer.from([0]),
      header(1, 4, { ts: 0x1000000, length: 1, typeId: 8 }),
      Buffer.from([0]),
    ]);
    expect(parse(data).map((m) => m.timestamp)).toEqual([1, 0x1000001]);
  });

  it('wraps timestamps at 2^32', () => {
    const data = Buffer.concat([
      header(0, 4, { ts: 0xfffffff0, length: 1, typeId: 8, streamId: 1 }),
      Buffer.from([0]),
      header(2, 4, { ts: 0x20 }),
      Buffer.from([0]),
    ]);
    expect(parse(data).map((m) => m.timestamp)).toEqual([0xfffffff0, 0x10]);
  });

  it('reassembles interleaved chunk streams', () => {
    const video = Buffer.alloc(200, 0xaa);
    const audio = Buffer.alloc(150, 0xbb);
    const data = Buffer.concat([
      header(0, 6, { ts: 10, length: 200, typeId: 9, streamId: 1 }),
      video.subarray(0, 128),
      header(0, 7, { ts: 11, length: 150, typeId: 8, streamId: 1 }),
      audio.subarray(0, 128),
      header(3, 6),
      video.subarray(128),
      header(3, 7),
      audio.subarray(128),
    ]);
    const messages = parse(data);
    expect(messages.map((m) => m.typeId)).toEqual([9, 8]);
    expect(messages[0]!.body.equals(video)).toBe(true);
    expect(messages[1]!.body.equals(audio)).toBe(true);
  });

  it('follows a chunk size change mid-stream', () => {
    const body = Buffer.alloc(5000, 3);
    const data = Buffer.concat([serializeMessage(6, 9, 1, 0, body, 128), setChunkSize(4096), serializeMessage(6, 9, 1, 40, body, 4096)]);
    const { reader: r, messages } = reader();
    for (const piece of randomPieces(data, prng(9), 100)) r.push(piece);
    expect(r.chunkSize).toBe(4096);
    const media = messages.filter((m) => m.typeId === 9);
    expect(media).toHaveLength(2);
    expect(media.every((m) => m.body.equals(body))).toBe(true);
  });

  it('drops a partial message on Abort and frees its bytes', () => {
    const { reader: r, messages } = reader();
    r.push(Buffer.concat([header(0, 6, { ts: 0, length: 300, typeId: 9, streamId: 1 }), Buffer.alloc(128)]));
    expect(r.bufferedBytes).toBe(300);
    r.push(abortMessage(6));
    expect(r.bufferedBytes).toBe(0);
    r.push(Buffer.concat([header(0, 6, { ts: 5, length: 2, typeId: 9, streamId: 1 }), Buffer.from([1, 2])]));
    expect(messages.filter((m) => m.typeId === 9).map((m) => [...m.body])).toEqual([[1, 2]]);
  });

  it('delivers zero-length messages', () => {
    expect(parse(header(0, 3, { ts: 0, length: 0, typeId: 20 }))).toHaveLength(1);
  });
});

describe('ChunkReader refuses hostile input', () => {
  const expectError = (data: Buffer, reason: string, options?: ChunkReaderOptions) => {
    const { reader: r } = reader(options);
    let caught: unknown;
    try {
      r.push(data);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RtmpProtocolError);
    expect((caught as RtmpProtocolError).reason).toBe(reason);
  };

  it('validates Set Chunk Size', () => {
    const zero = Buffer.concat([header(0, 2, { length: 4, typeId: 1 }), Buffer.from([0, 0, 0, 0])]);
    expectError(zero, 'bad_set_chunk_size');
    const topBit = Buffer.concat([header(0, 2, { length: 4, typeId: 1 }), Buffer.from([0x80, 0, 0, 1])]);
    expectError(topBit, 'bad_set_chunk_size');
    const { reader: r } = reader();
    r.push(setChunkSize(0x7fffffff));
    expect(r.chunkSize).toBe(16 * 1024 * 1024);
  });

  it('caps message length and buffered partial bytes', () => {
    expectError(header(0, 6, { length: 2_000_000, typeId: 9 }), 'message_too_large', { maxMessageBytes: 1_000_000 });
    const twoPartials = Buffer.concat([
      header(0, 6, { length: 900_000, typeId: 9 }),
      Buffer.alloc(128),
      header(0, 7, { length: 900_000, typeId: 8 }),
    ]);
    expectError(twoPartials, 'partial_bytes_exceeded', { maxPartialBytes: 1_000_000 });
  });

  it('shares a budget for unfinished messages between readers, gives it back, and gives back to the budget a message took from', () => {
    const budget = new ByteBudget(100_000);
    // The first 128-byte chunk of a message (the default chunk size).
    const start = (csid: number, length: number) => Buffer.concat([header(0, csid, { length, typeId: 9 }), Buffer.alloc(128)]);
    const a = reader({ budget });
    const b = reader({ budget });
    a.reader.push(start(6, 60_000));
    expect(budget.held).toBe(60_000);
    expect(() => b.reader.push(start(6, 50_000))).toThrow(expect.objectContaining({ reason: 'partial_budget_exceeded' }));
    a.reader.push(start(7, 30_000));
    // A message that began under one budget ends under it, whatever the reader takes from later.
    const other = new ByteBudget(100_000);
    a.reader.setLimits({ maxMessageBytes: 100_000, maxPartialBytes: 200_000, budget: other });
    a.reader.push(start(8, 20_000));
    expect([budget.held, other.held]).toEqual([90_000, 20_000]);
    // A finished message gives its bytes back, and so does a reader that stops.
    a.reader.push(serializeMessage(7, 9, 0, 0, Buffer.alloc(30_000), 128).subarray(12 + 128));
    expect(a.messages).toHaveLength(1);
    expect([budget.held, other.held]).toEqual([60_000, 20_000]);
    a.reader.stop();
    expect([budget.held, other.held]).toEqual([0, 0]);
  });

  it('applies new limits from the next message on', () => {
    const { reader: r, messages } = reader({ maxMessageBytes: 1000, maxPartialBytes: 1000 });
    expectError(header(0, 6, { length: 5000, typeId: 9 }), 'message_too_large', { maxMessageBytes: 1000 });
    r.setLimits({ maxMessageBytes: 10_000, maxPartialBytes: 10_000 });
    const message = serializeMessage(6, 9, 0, 0, Buffer.alloc(5000), 128);
    r.push(message.subarray(0, 1000));
    r.setLimits({ maxMessageBytes: 1000, maxPartialBytes: 1000 });
    // The message already arriving keeps its room; the next one is held to the new limit.
    r.push(message.subarray(1000));
    expect(messages).toHaveLength(1);
    expect(() => r.push(header(0, 6, { length: 5000, typeId: 9 }))).toThrow(expect.objectContaining({ reason: 'message_too_large' }));
  });

  it('times each unfinished message from the first sweep that finds it, and forgets it once it ends', () => {
    const { reader: r, messages } = reader();
    expect(r.unfinishedSince(1000)).toBeUndefined();
    // Cut after their first chunks (a 12-byte header and 128 bytes), so the two can interleave.
    const video = serializeMessage(6, 9, 0, 0, Buffer.alloc(500), 128);
    const audio = serializeMessage(4, 8, 0, 0, Buffer.alloc(300), 128);
    r.push(video.subarray(0, 140));
    expect(r.unfinishedSince(2000)).toBe(2000);
    expect(r.unfinishedSince(3000)).toBe(2000);
    // One begun later on another chunk stream: the oldest still counts, then the one left.
    r.push(audio.subarray(0, 140));
    expect(r.unfinishedSince(4000)).toBe(2000);
    r.push(video.subarray(140));
    expect(r.unfinishedSince(5000)).toBe(4000);
    r.push(audio.subarray(140));
    expect(r.unfinishedSince(6000)).toBeUndefined();
    // The next message on the first chunk stream is timed afresh.
    r.push(video.subarray(0, 140));
    expect(r.unfinishedSince(7000)).toBe(7000);
    expect(messages).toHaveLength(2);
  });

  it('caps the number of chunk streams', () => {
    const many = Buffer.concat(
      Array.from({ length: 70 }, (_, i) => Buffer.concat([header(0, 10 + i, { length: 1, typeId: 8 }), Buffer.from([0])])),
    );
    expectError(many, 'too_many_chunk_streams');
  });

  it('caps the number of chunk streams at the limit it is given (--max-chunk-streams)', () => {
    const streams = (count: number) =>
      Buffer.concat(
        Array.from({ length: count }, (_, i) => Buffer.concat([header(0, 10 + i, { length: 1, typeId: 8 }), Buffer.from([0])])),
      );
    const { reader: r, messages } = reader();
    r.setLimits({ maxMessageBytes: 1000, maxPartialBytes: 1000, maxChunkStreams: 3 });
    r.push(streams(3));
    expect(messages).toHaveLength(3);
    expectError(streams(4), 'too_many_chunk_streams', { maxChunkStreams: 3 });
  });

  it('refuses fmt 2/3 on a chunk stream never seen', () => {
    expectError(Buffer.concat([header(3, 9), Buffer.alloc(10)]), 'chunk_no_previous_header');
    expectError(Buffer.concat([header(2, 9, { ts: 1 }), Buffer.alloc(10)]), 'chunk_no_previous_header');
  });

  it('waits on truncated input and never throws anything but RtmpProtocolError on corruption', () => {
    const capture = readFileSync(new URL('./testdata/ffmpeg-publish.bin', import.meta.url));
    // Every prefix either parses or waits for more.
    for (let cut = 0; cut < 2000; cut += 7) parse(capture.subarray(0, cut));
    const random = prng(42);
    for (let round = 0; round < 300; round++) {
      const corrupted = Buffer.from(capture.subarray(0, 20_000));
      const flips = 1 + Math.floor(random() * 20);
      for (let i = 0; i < flips; i++) corrupted[Math.floor(random() * corrupted.length)] = Math.floor(random() * 256);
      const { reader: r } = reader({ maxPartialBytes: 4 * 1024 * 1024 });
      try {
        for (const piece of randomPieces(corrupted, random, 4000)) r.push(piece);
      } catch (err) {
        expect(err).toBeInstanceOf(RtmpProtocolError);
      }
      expect(r.bufferedBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    }
    for (let round = 0; round < 200; round++) {
      const noise = Buffer.from(Array.from({ length: 2000 }, () => Math.floor(random() * 256)));
      const { reader: r } = reader();
      try {
        r.push(noise);
      } catch (err) {
        expect(err).toBeInstanceOf(RtmpProtocolError);
      }
    }
  });
});
