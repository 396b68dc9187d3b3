// Properties of the AMF0 and AMF3 decoders: every value the encoder can
// write reads back equal, and any bytes at all either decode or fail with an
// RtmpProtocolError (never a TypeError, a RangeError or a hang), whatever
// nesting, references or lengths they claim.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amf0Reader, EcmaArray, encodeAmf0 } from './amf0.ts';
import { Amf3Context, decodeAmf3Value } from './amf3.ts';
import { AmfBudget, type AmfObject, type AmfValue } from './amf-values.ts';
import { parseCommand, parseData } from './commands.ts';
import { RtmpProtocolError } from './errors.ts';
import { MessageType } from './message-types.ts';

const key = fc.string({ maxLength: 12 });
const { value } = fc.letrec<{ value: AmfValue; object: AmfObject }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.double(),
    fc.boolean(),
    fc.string({ maxLength: 40 }),
    // Past 65,535 bytes a string is written as a long string.
    fc.string({ minLength: 1, maxLength: 3 }).map((s) => s.repeat(70_000 / s.length)),
    fc.constant(null),
    fc.constant(undefined),
    fc.date({ noInvalidDate: true }),
    fc.array(tie('value'), { maxLength: 5 }),
    tie('object'),
  ),
  object: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
}));

/** Only an RtmpProtocolError may escape `decode`. */
function failsCleanly(decode: () => unknown): void {
  try {
    decode();
  } catch (err) {
    expect(err).toBeInstanceOf(RtmpProtocolError);
  }
}

describe('AMF properties', () => {
  it('AMF0 reads back every value the encoder writes, ECMA arrays as objects', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 4 }), fc.dictionary(key, value, { maxKeys: 4 }), (values, entries) => {
        const encoded = encodeAmf0(...values, new EcmaArray(entries));
        expect(new Amf0Reader(encoded).readAll()).toEqual([...values, entries]);
      }),
      { numRuns: 300 },
    );
  });

  it('AMF0, AMF3 and the command and data parsers fail on any bytes only with an RtmpProtocolError', () => {
    // Bytes that start like real values reach deeper than uniform noise.
    const marker = fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x11);
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc
        .tuple(fc.array(marker, { minLength: 1, maxLength: 30 }), fc.uint8Array({ maxLength: 60 }))
        .map(([m, rest]) => Uint8Array.from([...m, ...rest])),
    );
    fc.assert(
      fc.property(bytes, fc.integer({ min: 0, max: 8 }), (raw, start) => {
        const buf = Buffer.from(raw);
        const from = Math.min(start, buf.length);
        failsCleanly(() => new Amf0Reader(buf, from).readAll());
        failsCleanly(() => decodeAmf3Value(buf, from, buf.length, new Amf3Context(new AmfBudget(buf.length))));
        failsCleanly(() => parseCommand(MessageType.commandAmf0, buf));
        failsCleanly(() => parseCommand(MessageType.commandAmf3, buf));
        failsCleanly(() => parseData(MessageType.dataAmf3, buf));
      }),
      { numRuns: 5000 },
    );
  });

  it('decodes AMF3 inside AMF0 (the avmplus marker) without escaping its bounds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.uint8Array({ maxLength: 20 }), (amf3, tail) => {
        const buf = Buffer.from([0x11, ...amf3, ...tail]);
        failsCleanly(() => {
          const values = new Amf0Reader(buf.subarray(0, 1 + amf3.length)).readAll();
          expect(values.length).toBeGreaterThan(0);
        });
      }),
      { numRuns: 3000 },
    );
  });
});
