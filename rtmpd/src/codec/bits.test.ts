import { describe, expect, it } from 'vitest';
import { BitReader } from './bits.ts';
import { MediaParseError } from './errors.ts';

describe('BitReader', () => {
  it('reads fixed-width fields across byte boundaries', () => {
    const r = new BitReader(Buffer.from([0b10110011, 0b01010101, 0xff, 0xff, 0xff, 0xff]));
    expect(r.u(3)).toBe(0b101);
    expect(r.u(7)).toBe(0b1001101);
    expect(r.bit()).toBe(0);
    expect(r.u(32)).toBe(0b10101 * 2 ** 27 + 2 ** 27 - 1);
  });

  it('decodes ue(v) and se(v)', () => {
    // 1 | 010 | 011 | 00100 | 00101 | 00110 -> ue 0,1,2,3,4,5
    const r = new BitReader(Buffer.from([0b10100110, 0b01000010, 0b10011000]));
    expect([r.ue(), r.ue(), r.ue(), r.ue(), r.ue()]).toEqual([0, 1, 2, 3, 4]);
    const s = new BitReader(Buffer.from([0b01001100, 0b10000101, 0b00000000]));
    // 010 -> +1, 011 -> -1, 00100 -> +2, 00101 -> -2
    expect([s.se(), s.se(), s.se(), s.se()]).toEqual([1, -1, 2, -2]);
  });

  it('skips emulation-prevention bytes (00 00 03)', () => {
    const r = new BitReader(Buffer.from([0x00, 0x00, 0x03, 0x01, 0xab]));
    expect(r.u(24)).toBe(0x000001);
    expect(r.u(8)).toBe(0xab);
    const raw = new BitReader(Buffer.from([0x00, 0x00, 0x03, 0x01]), 0, 4, false);
    expect(raw.u(32)).toBe(0x00000301);
  });

  it('throws MediaParseError past the end and on overlong Exp-Golomb codes', () => {
    const r = new BitReader(Buffer.from([0xff]));
    r.u(8);
    expect(() => r.bit()).toThrow(MediaParseError);
    expect(() => new BitReader(Buffer.alloc(8)).ue()).toThrow(MediaParseError);
    expect(() => new BitReader(Buffer.alloc(2)).ue()).toThrow(MediaParseError);
    // 31 leading zeros are the longest code; 32 would give a value above 2^32 - 2.
    const longest = Buffer.from([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]);
    expect(new BitReader(longest, 0, 8, false).ue()).toBe(2 ** 31 - 1 + 2 ** 31 - 1);
    const tooLong = Buffer.from([0, 0, 0, 0, 0x80, 0, 0, 0, 0]);
    expect(() => new BitReader(tooLong, 0, 9, false).ue()).toThrow(/exp-golomb code too long/);
  });

  it('decodes AV1 uvlc', () => {
    expect(new BitReader(Buffer.from([0b00101000]), 0, 1, false).uvlc()).toBe(4);
  });

  it('reads an AV1 uvlc of 32 or more zeros as 2^32 - 1, up to and including its 1 bit', () => {
    // 36 zeros, the 1, then 0b101 as the next field: no value bits are read after the 1.
    const r = new BitReader(Buffer.from([0, 0, 0, 0, 0b00001101]), 0, 5, false);
    expect(r.uvlc()).toBe(0xffffffff);
    expect(r.u(3)).toBe(0b101);
    expect(() => new BitReader(Buffer.alloc(8), 0, 8, false).uvlc()).toThrow(MediaParseError);
  });
});
