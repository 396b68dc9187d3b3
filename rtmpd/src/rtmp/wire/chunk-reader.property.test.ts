// Properties of the chunk reader over generated streams: whatever the chunk
// sizes, chunk stream ids, timestamps and read boundaries, it hands back
// exactly the messages that were written; on any bytes at all it fails only
// with an RtmpProtocolError and never holds more than its limits allow.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../memory/byte-budget.ts';
import { ChunkReader } from './chunk-reader.ts';
import { serializeMessage } from './chunk-writer.ts';
import { RtmpProtocolError } from './errors.ts';
import { MessageType } from './message-types.ts';

interface Message {
  csid: number;
  typeId: number;
  streamId: number;
  timestamp: number;
  body: Uint8Array;
}

const message: fc.Arbitrary<Message> = fc.record({
  // One-, two- and three-byte basic headers.
  csid: fc.oneof(fc.integer({ min: 3, max: 63 }), fc.integer({ min: 64, max: 319 }), fc.integer({ min: 320, max: 65_599 })),
  typeId: fc.constantFrom(MessageType.audio, MessageType.video, MessageType.dataAmf0, MessageType.commandAmf0),
  streamId: fc.integer({ min: 0, max: 0xffffffff }),
  // Around the 0xffffff boundary where the extended timestamp starts.
  timestamp: fc.oneof(fc.integer({ min: 0, max: 0xfffffe }), fc.integer({ min: 0xffffff, max: 0xffffffff })),
  body: fc.uint8Array({ maxLength: 3000 }),
});

/** Cuts `bytes` at the given fractions, as socket reads would. */
function cut(bytes: Buffer, fractions: number[]): Buffer[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let at = 0;
  for (const point of [...points, bytes.length]) {
    if (point > at) pieces.push(bytes.subarray(at, point));
    at = Math.max(at, point);
  }
  return pieces;
}

describe('ChunkReader properties', () => {
  it('reads back any sequence of messages at any chunk sizes, cut at any read boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(message, fc.option(fc.integer({ min: 1, max: 70_000 }))), { maxLength: 12 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }),
        fc.boolean(),
        (items, fractions, borrowBodies) => {
          let chunkSize = 128;
          const wire: Buffer[] = [];
          for (const [m, newSize] of items) {
            if (newSize !== null) {
              const size = Buffer.alloc(4);
              size.writeUInt32BE(newSize);
              wire.push(serializeMessage(2, MessageType.setChunkSize, 0, 0, size, chunkSize));
              chunkSize = newSize;
            }
            wire.push(serializeMessage(m.csid, m.typeId, m.streamId, m.timestamp, Buffer.from(m.body), chunkSize));
          }
          const got: Omit<Message, 'csid'>[] = [];
          const reader = new ChunkReader(
            (typeId, streamId, timestamp, body) => {
              if (typeId !== MessageType.setChunkSize) got.push({ typeId, streamId, timestamp, body: Uint8Array.from(body) });
            },
            { borrowBodies },
          );
          for (const piece of cut(Buffer.concat(wire), fractions)) reader.push(piece);
          expect(got).toEqual(items.map(([{ typeId, streamId, timestamp, body }]) => ({ typeId, streamId, timestamp, body })));
          expect(reader.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fails on any bytes only with an RtmpProtocolError, within its limits and the shared budget', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 600 }), { minLength: 1, maxLength: 8 }), (pieces) => {
        const budget = new ByteBudget(256 * 1024);
        const reader = new ChunkReader(() => {}, { maxMessageBytes: 64 * 1024, maxPartialBytes: 64 * 1024, budget });
        try {
          for (const piece of pieces) {
            reader.push(Buffer.from(piece));
            expect(reader.bufferedBytes).toBeLessThanOrEqual(64 * 1024);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(RtmpProtocolError);
        }
        expect(budget.held).toBe(reader.bufferedBytes);
      }),
      { numRuns: 2000 },
    );
  });
});
