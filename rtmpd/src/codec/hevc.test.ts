import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MediaParseError } from './errors.ts';
import { hevcHasIrap, parseHevcDecoderConfig } from './hevc.ts';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';

const dir = new URL('./testdata/', import.meta.url);
const load = (name: string) => readFileSync(new URL(name, dir));
const probe = (name: string) => (JSON.parse(load(`${name}.json`).toString()) as { streams: Record<string, string | number>[] }).streams[0]!;

const FILES = ['hevc_main_320x240', 'hevc_main10_1920x1080', 'hevc_rext444_426x240', 'hevc_vps_timing_320x240'];
/** The records whose VPS carries timing info (x265 writes it in the SPS VUI only, which is not parsed; see testdata/generate.sh). */
const VPS_TIMING = new Set(['hevc_vps_timing_320x240']);

describe('HEVC (real x265 hvcC records vs ffprobe)', () => {
  for (const name of FILES) {
    it(name, () => {
      const hvcc = load(`${name}.hvcc`);
      const expected = probe(name);
      const [n, d] = String(expected.r_frame_rate).split('/').map(Number);
      const config = parseHevcDecoderConfig(hvcc);
      expect(config).toMatchObject({
        width: expected.width,
        height: expected.height,
        profile: expected.profile,
        levelIdc: expected.level,
        tier: 'Main',
        nalLengthSize: 4,
      });
      if (VPS_TIMING.has(name)) expect(config.fps).toBeCloseTo(n! / d!, 6);
      else expect(config.fps).toBeUndefined();
      expect(config.vps).toHaveLength(1);
      expect(config.sps).toHaveLength(1);
      expect(config.pps).toHaveLength(1);
      expect(config.sps[0]!.buffer).toBe(hvcc.buffer);
    });
  }

  it('formats levels as level_idc / 30', () => {
    expect(parseHevcDecoderConfig(load('hevc_main10_1920x1080.hvcc'))).toMatchObject({ level: '4.0', bitDepth: 10 });
    expect(parseHevcDecoderConfig(load('hevc_rext444_426x240.hvcc'))).toMatchObject({ level: '2.1', chromaFormatIdc: 3 });
  });

  it('rejects garbage and survives prefixes/corruption', () => {
    expect(() => parseHevcDecoderConfig(Buffer.alloc(23))).toThrow(MediaParseError);
    for (const name of FILES) {
      // x265 puts a ~2 KB SEI in the record; the parameter sets come first.
      const hvcc = load(`${name}.hvcc`);
      checkPrefixes(hvcc.subarray(0, 200), parseHevcDecoderConfig);
      checkPrefixes(hvcc, parseHevcDecoderConfig);
      checkCorruptions(hvcc.subarray(0, 160), parseHevcDecoderConfig, 1000);
      checkCorruptions(hvcc, parseHevcDecoderConfig, 500);
    }
  });
});

describe('hevcHasIrap', () => {
  const nal = (type: number) => Buffer.from([0, 0, 0, 3, type << 1, 1, 0xaa]);
  it('detects IDR/CRA/BLA (16..23) only', () => {
    for (const t of [16, 19, 20, 21, 23]) expect(hevcHasIrap(Buffer.concat([nal(35), nal(t)]), 4)).toBe(true);
    for (const t of [0, 1, 9, 32, 33, 34, 39]) expect(hevcHasIrap(Buffer.concat([nal(35), nal(t)]), 4)).toBe(false);
  });
  it('is bounds-checked', () => {
    expect(() => hevcHasIrap(Buffer.from([0, 0, 0, 9, 40, 1]), 4)).toThrow(MediaParseError);
    checkCorruptions(Buffer.concat([nal(1), nal(1), nal(19)]), (b) => hevcHasIrap(b, 4));
  });
});
