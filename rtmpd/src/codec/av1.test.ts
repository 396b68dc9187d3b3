import { describe, expect, it } from 'vitest';
import { av1IsKeyframe, parseAv1CodecConfig } from './av1.ts';
import { MediaParseError } from './errors.ts';
import { MAX_DECLARED_FPS } from './frame-rate.ts';
import { BitWriter } from '../../test/support/bit-writer.ts';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';
import { codecFixture, probedStream } from '../../test/support/codec-fixtures.ts';

describe('AV1 (real libaom av1C records vs ffprobe)', () => {
  for (const [name, bitDepth] of [
    ['av1_320x240', 8],
    ['av1_10bit_426x240', 10],
  ] as const) {
    it(name, () => {
      const expected = probedStream(name);
      const config = parseAv1CodecConfig(codecFixture(`${name}.av1c`));
      expect(config).toMatchObject({
        width: expected.width,
        height: expected.height,
        profile: expected.profile,
        seqLevelIdx: expected.level,
        tier: 'Main',
        bitDepth,
      });
      checkPrefixes(codecFixture(`${name}.av1c`), parseAv1CodecConfig);
      checkCorruptions(codecFixture(`${name}.av1c`), parseAv1CodecConfig);
    });
  }

  it('rejects a wrong marker', () => {
    expect(() => parseAv1CodecConfig(Buffer.from([0x01, 0, 0, 0]))).toThrow(MediaParseError);
  });
});

describe('av1IsKeyframe', () => {
  it('is true for a TU with a sequence header or a KEY_FRAME frame header', () => {
    const seq = parseAv1CodecConfig(codecFixture('av1_320x240.av1c')).configObus;
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
    // A size of 1 in 9 leb128 bytes (8 is the most there may be), then that 1 byte.
    expect(() => av1IsKeyframe(Buffer.from([0x32, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x10]))).toThrow(/leb128 too long/);
  });

  it('refuses an OBU with the forbidden bit set', () => {
    expect(() => av1IsKeyframe(Buffer.from([0x80 | 0x32, 2, 0x10, 0]))).toThrow(/forbidden bit/);
  });
});

/**
 * An av1C whose sequence header (5.5) declares a 1920x1080 picture and the
 * given timing_info: `ticksPerPictureMinus1` is coded as uvlc when defined
 * (equal_picture_interval), or 'escape' for uvlc's 40-zero escape.
 */
function av1cWithTiming(numUnitsInDisplayTick: number, timeScale: number, ticksPerPictureMinus1?: number | 'escape'): Buffer {
  const w = new BitWriter().u(3, 0).flag(false).flag(false); // seq_profile, still_picture, reduced_still_picture_header
  w.flag(true).u(32, numUnitsInDisplayTick).u(32, timeScale); // timing_info_present_flag, timing_info
  w.flag(ticksPerPictureMinus1 !== undefined);
  if (ticksPerPictureMinus1 === 'escape') w.u(40, 0).flag(true);
  else if (ticksPerPictureMinus1 !== undefined) w.ue(ticksPerPictureMinus1);
  w.flag(false).flag(false).u(5, 0); // decoder_model_info_present_flag, initial_display_delay_present_flag, one operating point
  w.u(12, 0).u(5, 8).flag(false); // operating_point_idc, seq_level_idx 4.0, seq_tier
  w.u(4, 10).u(4, 10).u(11, 1919).u(11, 1079); // frame size bits, max_frame_width/height_minus_1
  const obu = w.bytes();
  return Buffer.concat([Buffer.from([0x81, 0x08, 0x0c, 0, (OBU_SEQUENCE_HEADER << 3) | 2, obu.length]), obu]);
}
const OBU_SEQUENCE_HEADER = 1;

describe('AV1 timing_info frame rate (hand-built sequence headers)', () => {
  const parse = (...timing: Parameters<typeof av1cWithTiming>) => parseAv1CodecConfig(av1cWithTiming(...timing));

  it('is time_scale over the ticks of a picture', () => {
    expect(parse(1001, 30000)).toMatchObject({ width: 1920, height: 1080 });
    expect(parse(1001, 30000).fps).toBeCloseTo(29.97, 2);
    expect(parse(1, 50, 1).fps).toBe(25);
    expect(parse(1, MAX_DECLARED_FPS, 0).fps).toBe(MAX_DECLARED_FPS);
  });

  it('declares no rate above MAX_DECLARED_FPS or with a zero field, as H.264 and HEVC', () => {
    expect(parse(1, 0xffffffff).fps).toBeUndefined();
    expect(parse(1, MAX_DECLARED_FPS + 1, 0).fps).toBeUndefined();
    expect(parse(0, 30000).fps).toBeUndefined();
    expect(parse(1001, 0).fps).toBeUndefined();
  });

  it('reads the largest num_ticks_per_picture as a rate and the uvlc escape as none, and the fields after both', () => {
    expect(parse(0xffffffff, 0xffffffff, 2 ** 32 - 2).fps! * (2 ** 32 - 1)).toBeCloseTo(1, 9);
    const escaped = parse(1, 30, 'escape');
    expect(escaped.fps).toBeUndefined();
    expect(escaped).toMatchObject({ width: 1920, height: 1080 });
  });
});
