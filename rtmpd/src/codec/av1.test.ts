import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { av1IsKeyframe, parseAv1CodecConfig } from './av1.ts';
import { MediaParseError } from './errors.ts';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';

const dir = new URL('./testdata/', import.meta.url);
const load = (name: string) => readFileSync(new URL(name, dir));
const probe = (name: string) => (JSON.parse(load(`${name}.json`).toString()) as { streams: Record<string, string | number>[] }).streams[0]!;

describe('AV1 (real libaom av1C records vs ffprobe)', () => {
  for (const [name, bitDepth] of [
    ['av1_320x240', 8],
    ['av1_10bit_426x240', 10],
  ] as const) {
    it(name, () => {
      const expected = probe(name);
      const config = parseAv1CodecConfig(load(`${name}.av1c`));
      expect(config).toMatchObject({
        width: expected.width,
        height: expected.height,
        profile: expected.profile,
        seqLevelIdx: expected.level,
        tier: 'Main',
        bitDepth,
      });
      checkPrefixes(load(`${name}.av1c`), parseAv1CodecConfig);
      checkCorruptions(load(`${name}.av1c`), parseAv1CodecConfig);
    });
  }

  it('rejects a wrong marker', () => {
    expect(() => parseAv1CodecConfig(Buffer.from([0x01, 0, 0, 0]))).toThrow(MediaParseError);
  });
});

describe('av1IsKeyframe', () => {
  it('is true for a TU with a sequence header or a KEY_FRAME frame header', () => {
    const seq = parseAv1CodecConfig(load('av1_320x240.av1c')).configObus;
    expect(av1IsKeyframe(seq)).toBe(true);
    // OBU_FRAME (type 6, has_size) with show_existing_frame=0, frame_type=KEY_FRAME(0)
    expect(av1IsKeyframe(Buffer.from([0x32, 2, 0x10, 0]))).toBe(true);
    // frame_type INTER_FRAME (1)
    expect(av1IsKeyframe(Buffer.from([0x32, 2, 0x20, 0]))).toBe(false);
    // temporal delimiter then inter frame header (type 3)
    expect(av1IsKeyframe(Buffer.from([0x12, 0, 0x1a, 1, 0x20]))).toBe(false);
  });
  it('throws MediaParseError on bad OBU sizes', () => {
    expect(() => av1IsKeyframe(Buffer.from([0x32, 9, 0]))).toThrow(MediaParseError);
    expect(() => av1IsKeyframe(Buffer.from([0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow(MediaParseError);
  });
});
