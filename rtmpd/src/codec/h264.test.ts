import { describe, expect, it } from 'vitest';
import { MediaParseError } from './errors.ts';
import { h264HasIdr, parseAvcDecoderConfig, parseH264Sps } from './h264.ts';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';
import { codecFixture, frameRate, probedStream } from '../../test/support/codec-fixtures.ts';

const FILES = [
  'h264_high_320x240',
  'h264_baseline_1280x720',
  'h264_main_1920x1080',
  'h264_high444_426x240',
  'h264_high422_640x360',
  'h264_interlaced_720x576',
  'h264_cqm_352x288',
];

const parseAll = (b: Buffer) => {
  const c = parseAvcDecoderConfig(b);
  return parseH264Sps(c.sps[0]!);
};

describe('H.264 (real x264 avcC records vs ffprobe)', () => {
  for (const name of FILES) {
    it(name, () => {
      const avcc = codecFixture(`${name}.avcc`);
      const expected = probedStream(name);
      const config = parseAvcDecoderConfig(avcc);
      expect(config.nalLengthSize).toBe(4);
      expect(config.sps).toHaveLength(1);
      expect(config.pps).toHaveLength(1);
      expect(config.sps[0]!.buffer).toBe(avcc.buffer); // subarray, not a copy
      const sps = parseH264Sps(config.sps[0]!);
      expect(sps.width).toBe(expected.width);
      expect(sps.height).toBe(expected.height);
      expect(sps.profile).toBe(expected.profile);
      expect(sps.levelIdc).toBe(expected.level);
      expect(sps.level).toBe(`${Math.floor(Number(expected.level) / 10)}.${Number(expected.level) % 10}`);
      expect(sps.fps).toBeCloseTo(frameRate(String(expected.r_frame_rate)), 6);
      expect(config.profileIdc).toBe(sps.profileIdc);
    });
  }

  it('reports the 1080p crop and the 4:4:4 / interlaced specifics', () => {
    expect(parseAll(codecFixture('h264_main_1920x1080.avcc'))).toMatchObject({ width: 1920, height: 1080, level: '4.0' });
    expect(parseAll(codecFixture('h264_high444_426x240.avcc'))).toMatchObject({ chromaFormatIdc: 3, width: 426 });
    expect(parseAll(codecFixture('h264_high422_640x360.avcc'))).toMatchObject({ chromaFormatIdc: 2, bitDepth: 10 });
  });

  it('names levels and profiles like ffprobe', () => {
    // Constrained Baseline (constraint_set1), level 3.1
    const sps = Buffer.from(parseAvcDecoderConfig(codecFixture('h264_baseline_1280x720.avcc')).sps[0]!);
    expect(parseH264Sps(sps).profile).toBe('Constrained Baseline');
  });

  it('rejects garbage with MediaParseError', () => {
    expect(() => parseAvcDecoderConfig(Buffer.from([2, 100, 0, 30, 0xff, 0xe1]))).toThrow(MediaParseError);
    expect(() => parseAvcDecoderConfig(Buffer.from([1, 100, 0, 30, 0xff, 0xe1, 0, 50, 0x67]))).toThrow(/out of range/);
    expect(() => parseH264Sps(Buffer.from([0x68, 1, 2, 3]))).toThrow(/not an SPS/);
    // NAL lengths of 1, 2 or 4 bytes; 3 (lengthSizeMinusOne 2) is not allowed.
    const threeByteLengths = Buffer.from(codecFixture('h264_high_320x240.avcc'));
    threeByteLengths[4] = 0xfc | 2;
    expect(() => parseAvcDecoderConfig(threeByteLengths)).toThrow(/lengthSizeMinusOne 2/);
  });

  it('survives every prefix and random corruption of real records', () => {
    for (const name of FILES) {
      const avcc = codecFixture(`${name}.avcc`);
      checkPrefixes(avcc, parseAll);
      checkCorruptions(avcc, parseAll, 1000);
    }
  });
});

describe('h264HasIdr', () => {
  const nal = (type: number, len = 3) => {
    const b = Buffer.alloc(4 + len);
    b.writeUInt32BE(len);
    b[4] = 0x60 | type;
    return b;
  };

  it('finds an IDR after SEI/SPS/PPS and not in a P slice', () => {
    expect(h264HasIdr(Buffer.concat([nal(9), nal(6), nal(7), nal(8), nal(5)]), 4)).toBe(true);
    expect(h264HasIdr(Buffer.concat([nal(9), nal(1)]), 4)).toBe(false);
    expect(h264HasIdr(Buffer.alloc(0), 4)).toBe(false);
  });

  it('honours 1- and 2-byte length prefixes', () => {
    expect(h264HasIdr(Buffer.from([2, 0x65, 0x88]), 1)).toBe(true);
    expect(h264HasIdr(Buffer.from([0, 2, 0x41, 0x9a, 0, 1, 0x65]), 2)).toBe(true);
  });

  it('throws MediaParseError on lengths past the end, never reads out of range', () => {
    expect(() => h264HasIdr(Buffer.from([0, 0, 0, 9, 0x65]), 4)).toThrow(MediaParseError);
    expect(() => h264HasIdr(Buffer.from([0, 0, 1]), 4)).toThrow(MediaParseError);
    expect(() => h264HasIdr(Buffer.from([1]), 0)).toThrow(MediaParseError);
    checkCorruptions(Buffer.concat([nal(1, 20), nal(1, 40)]), (b) => h264HasIdr(b, 4));
  });
});
