import { describe, expect, it } from 'vitest';
import { readProbe, SEI_PREFIX_SIZE, wallClockMicros, withProbe } from './sei.ts';

// An AVC NALU packet (keyframe, CTS 0) with one 4-byte-length IDR NAL.
const frame = Buffer.from([0x17, 0x01, 0, 0, 0, 0, 0, 0, 4, 0x65, 0x88, 0x84, 0x00]);

describe('SEI probe', () => {
  it('round-trips the clock and sequence number, ahead of the frame untouched', () => {
    const micros = wallClockMicros();
    const body = withProbe(frame, 34_359_738_367, micros); // the largest 35-bit sequence number
    expect(body.length).toBe(frame.length + SEI_PREFIX_SIZE);
    expect(body.subarray(0, 5)).toEqual(frame.subarray(0, 5));
    expect(body.subarray(5 + SEI_PREFIX_SIZE)).toEqual(frame.subarray(5));
    const probe = { seq: 0, micros: 0 };
    expect(readProbe(body, probe)).toBe(true);
    expect(probe).toEqual({ seq: 34_359_738_367, micros });
  });

  it('writes into a buffer it is given, leaving what follows', () => {
    const into = Buffer.alloc(frame.length + SEI_PREFIX_SIZE + 3, 0xee);
    const body = withProbe(frame, 7, 123_456, into);
    expect(body.buffer).toBe(into.buffer);
    expect(body).toEqual(withProbe(frame, 7, 123_456));
    expect(into.subarray(body.length)).toEqual(Buffer.alloc(3, 0xee));
    expect(() => withProbe(frame, 7, 123_456, into.subarray(0, body.length - 1))).toThrow(RangeError);
  });

  it('never needs emulation prevention: the SEI NAL holds no zero byte', () => {
    for (const [seq, micros] of [
      [0, 0],
      [1, 2 ** 40],
      [128, wallClockMicros()],
    ] as const) {
      const nal = withProbe(frame, seq, micros).subarray(9, 5 + SEI_PREFIX_SIZE);
      expect(nal.includes(0)).toBe(false);
    }
  });

  it('reports frames without our SEI as unprobed', () => {
    expect(readProbe(frame, { seq: 0, micros: 0 })).toBe(false);
    expect(readProbe(Buffer.from([0x17, 0x00, 0, 0, 0]), { seq: 0, micros: 0 })).toBe(false);
  });
});
