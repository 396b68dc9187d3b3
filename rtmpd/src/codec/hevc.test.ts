import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaParseError } from './errors.ts';
import { type HevcConfig, hevcHasIrap, parseHevcDecoderConfig } from './hevc.ts';
import { MAX_DECLARED_FPS } from './frame-rate.ts';
import { BitWriter } from '../../test/support/bit-writer.ts';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';
import { codecFixture, frameRate, probedStream } from '../../test/support/codec-fixtures.ts';

/**
 * A 1920x1080 SPS at `timeScale / numUnitsInTick` fps with every structure
 * before the VUI timing: three sub-layers (one with its own profile), a
 * conformance window, coded and predicted scaling lists, PCM, short-term
 * reference sets predicted from each other, long-term references, and a VUI
 * with extended SAR, colour description, chroma location and display window.
 */
function handMadeSps(timeScale: number, numUnitsInTick: number): Buffer {
  const w = new BitWriter().u(16, (33 << 9) | 1); // NAL header: type 33, layer 0, nuh_temporal_id_plus1 1
  w.u(4, 0).u(3, 2).flag(true); // sps_video_parameter_set_id, sps_max_sub_layers_minus1 2, temporal_id_nesting
  w.u(8, 0x01).u(32, 0x60000000).u(48, 0x900000000000).u(8, 123); // general PTL: Main, level 4.1
  w.flag(true).flag(true).flag(false).flag(true); // sub-layer 0: profile and level; sub-layer 1: level
  for (let i = 2; i < 8; i++) w.u(2, 0); // reserved_zero_2bits
  w.u(88, 0).u(8, 90).u(8, 93); // sub-layer 0 profile and level, sub-layer 1 level
  w.ue(0).ue(1).ue(1920).ue(1088); // sps_seq_parameter_set_id, chroma_format_idc 4:2:0, size
  w.flag(true).ue(0).ue(0).ue(0).ue(4); // conformance window: 8 rows off the bottom
  w.ue(0).ue(0).ue(4); // bit depths, log2_max_pic_order_cnt_lsb_minus4: 8-bit POC LSBs
  w.flag(true);
  for (let i = 0; i <= 2; i++)
    w.ue(i + 1)
      .ue(i)
      .ue(0); // ordering info for each sub-layer
  w.ue(0).ue(3).ue(0).ue(3).ue(1).ue(1); // block sizes, transform depths
  w.flag(true).flag(true); // scaling_list_enabled_flag, sps_scaling_list_data_present_flag
  for (let sizeId = 0; sizeId < 4; sizeId++) {
    for (let matrixId = 0; matrixId < 6; matrixId += sizeId === 3 ? 3 : 1) {
      if (matrixId % 2) {
        w.flag(false).ue(1); // predicted from the matrix before
        continue;
      }
      w.flag(true);
      if (sizeId > 1) w.se(-3); // scaling_list_dc_coef_minus8
      for (let i = 0; i < Math.min(64, 1 << (4 + 2 * sizeId)); i++) w.se(i % 3 === 0 ? 5 : -2);
    }
  }
  w.flag(true).flag(true); // amp, sao
  w.flag(true).u(4, 7).u(4, 7).ue(0).ue(1).flag(false); // PCM
  // Four short-term sets, each but the first predicted from the one before (7.4.8): a
  // picture shifted onto the current one drops out, so the flag count depends on the values.
  w.ue(4); // num_short_term_ref_pic_sets
  w.ue(2).ue(1).ue(0).flag(true).ue(1).flag(true).ue(0).flag(false); // set 0: POCs -1, -3 and +1
  // Set 1, shifted by +1 (-1 lands on 0): -2 not kept, +2 kept without use, own +1 used: {+1, +2}.
  w.flag(true).flag(false).ue(0).flag(true).flag(false).flag(false).flag(false).flag(true).flag(true);
  // Set 2, shifted by -2 (+2 lands on 0): {-1, -2}.
  w.flag(true).flag(true).ue(1).flag(true).flag(true).flag(true);
  // Set 3, shifted by +1 (-1 lands on 0): {-1, +1}.
  w.flag(true).flag(false).ue(0).flag(true).flag(true).flag(true);
  w.flag(true).ue(2).u(8, 17).flag(true).u(8, 200).flag(false); // two long-term references, 8-bit POC LSBs
  w.flag(true).flag(true); // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
  w.flag(true); // vui_parameters_present_flag
  w.flag(true).u(8, 255).u(16, 5).u(16, 7); // extended SAR
  w.flag(true).flag(true); // overscan
  w.flag(true).u(3, 5).flag(false).flag(true).u(8, 1).u(8, 1).u(8, 1); // video signal, colour description
  w.flag(true).ue(1).ue(1); // chroma location
  w.flag(false).flag(false).flag(false); // neutral chroma, field_seq, frame_field_info
  w.flag(true).ue(0).ue(0).ue(2).ue(2); // default display window
  w.flag(true).u(32, numUnitsInTick).u(32, timeScale); // timing
  w.flag(false).flag(false).flag(false).flag(false); // poc_proportional, hrd, bitstream_restriction, sps_extension
  return w.nal();
}

/** `hvcc` with its parameter sets replaced. */
function withParameterSets(hvcc: Buffer, { vps, sps, pps }: Pick<HevcConfig, 'vps' | 'sps' | 'pps'>): Buffer {
  const arrays = [vps, sps, pps].map((nals) => {
    const type = (nals[0]![0]! >> 1) & 0x3f;
    const head = Buffer.from([0x80 | type, 0, nals.length]);
    return Buffer.concat([head, ...nals.flatMap((nal) => [Buffer.from([nal.length >> 8, nal.length & 0xff]), nal])]);
  });
  return Buffer.concat([hvcc.subarray(0, 22), Buffer.from([arrays.length]), ...arrays]);
}

const FILES = ['hevc_main_320x240', 'hevc_main10_1920x1080', 'hevc_rext444_426x240', 'hevc_vps_timing_320x240', 'hevc_vui_2997_640x360'];

describe('HEVC (real x265 hvcC records vs ffprobe)', () => {
  for (const name of FILES) {
    it(name, () => {
      const hvcc = codecFixture(`${name}.hvcc`);
      const expected = probedStream(name);
      const config = parseHevcDecoderConfig(hvcc);
      expect(config).toMatchObject({
        width: expected.width,
        height: expected.height,
        profile: expected.profile,
        levelIdc: expected.level,
        tier: 'Main',
        nalLengthSize: 4,
      });
      // x265 writes the timing in the SPS VUI only; hevc_vps_timing_320x240 has it in the VPS too.
      expect(config.fps).toBeCloseTo(frameRate(String(expected.r_frame_rate)), 6);
      expect(config.vps).toHaveLength(1);
      expect(config.sps).toHaveLength(1);
      expect(config.pps).toHaveLength(1);
      expect(config.sps[0]!.buffer).toBe(hvcc.buffer);
    });
  }

  it('reads the frame rate past every SPS structure x265 leaves out', () => {
    const hvcc = codecFixture('hevc_main_320x240.hvcc');
    const config = parseHevcDecoderConfig(hvcc);
    const sps = handMadeSps(60000, 1001);
    expect(parseHevcDecoderConfig(withParameterSets(hvcc, { ...config, sps: [sps] }))).toMatchObject({
      width: 1920,
      height: 1080,
      fps: 60000 / 1001,
    });
  });

  it('takes the VPS timing before the SPS timing', () => {
    const vpsTiming = parseHevcDecoderConfig(codecFixture('hevc_vps_timing_320x240.hvcc'));
    const sps = [handMadeSps(50, 1)];
    expect(parseHevcDecoderConfig(withParameterSets(codecFixture('hevc_vps_timing_320x240.hvcc'), { ...vpsTiming, sps })).fps).toBe(25);
    const spsOnly = parseHevcDecoderConfig(codecFixture('hevc_main_320x240.hvcc'));
    expect(parseHevcDecoderConfig(withParameterSets(codecFixture('hevc_main_320x240.hvcc'), { ...spsOnly, sps })).fps).toBe(50);
  });

  it('gives no frame rate for a zero tick or a rate no camera sends', () => {
    const hvcc = codecFixture('hevc_main_320x240.hvcc');
    const config = parseHevcDecoderConfig(hvcc);
    const fps = (timeScale: number, ticks: number) =>
      parseHevcDecoderConfig(withParameterSets(hvcc, { ...config, sps: [handMadeSps(timeScale, ticks)] })).fps;
    expect(fps(25, 0)).toBeUndefined();
    expect(fps(0, 1)).toBeUndefined();
    expect(fps(0xffffffff, 1)).toBeUndefined();
    expect(fps(MAX_DECLARED_FPS, 1)).toBe(MAX_DECLARED_FPS);
  });

  it('reads a truncated SPS to its picture size and no frame rate, never a wrong one', () => {
    for (const [hvcc, sps] of [
      [codecFixture('hevc_vui_2997_640x360.hvcc'), undefined],
      [codecFixture('hevc_main_320x240.hvcc'), handMadeSps(60000, 1001)],
    ] as const) {
      const config = parseHevcDecoderConfig(hvcc);
      const full = sps ?? config.sps[0]!;
      const expected = parseHevcDecoderConfig(withParameterSets(hvcc, { ...config, sps: [full] }));
      const outcomes = new Set<string>();
      for (let length = 3; length < full.length; length++) {
        const truncated = withParameterSets(hvcc, { ...config, sps: [full.subarray(0, length)] });
        let parsed: HevcConfig;
        try {
          parsed = parseHevcDecoderConfig(truncated);
        } catch (err) {
          expect(err).toBeInstanceOf(MediaParseError);
          outcomes.add('no picture size');
          continue;
        }
        expect(parsed).toMatchObject({ width: expected.width, height: expected.height });
        if (parsed.fps === undefined) outcomes.add('no frame rate');
        else expect(parsed.fps).toBe(expected.fps);
      }
      expect(outcomes).toEqual(new Set(['no picture size', 'no frame rate']));
    }
  });

  it('reads a changed SPS to a frame rate of at most MAX_DECLARED_FPS or none, or fails with a MediaParseError', () => {
    const hvcc = codecFixture('hevc_main_320x240.hvcc');
    const config = parseHevcDecoderConfig(hvcc);
    const sps = handMadeSps(60000, 1001);
    fc.assert(
      fc.property(fc.nat({ max: sps.length - 1 }), fc.uint8Array({ minLength: 1, maxLength: 8 }), (at, bytes) => {
        const changed = Buffer.from(sps);
        changed.set(bytes.subarray(0, sps.length - at), at);
        let fps: number | undefined;
        try {
          fps = parseHevcDecoderConfig(withParameterSets(hvcc, { ...config, sps: [changed] })).fps;
        } catch (err) {
          expect(err).toBeInstanceOf(MediaParseError);
          return;
        }
        if (fps !== undefined) expect(fps).toBeGreaterThan(0);
        if (fps !== undefined) expect(fps).toBeLessThanOrEqual(MAX_DECLARED_FPS);
      }),
      { numRuns: 3000 },
    );
  });

  it('formats levels as level_idc / 30', () => {
    expect(parseHevcDecoderConfig(codecFixture('hevc_main10_1920x1080.hvcc'))).toMatchObject({ level: '4.0', bitDepth: 10 });
    expect(parseHevcDecoderConfig(codecFixture('hevc_rext444_426x240.hvcc'))).toMatchObject({ level: '2.1', chromaFormatIdc: 3 });
  });

  it('rejects garbage and survives prefixes/corruption', () => {
    expect(() => parseHevcDecoderConfig(Buffer.alloc(23))).toThrow(MediaParseError);
    for (const name of FILES) {
      // x265 puts a ~2 KB SEI in the record; the parameter sets come first.
      const hvcc = codecFixture(`${name}.hvcc`);
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
