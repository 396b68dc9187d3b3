import { describe, expect, it } from 'vitest';
import { ID_CPE, ID_LFE, ID_SCE, parseAudioSpecificConfig, type AacConfig } from './aac.ts';
import { MediaParseError } from './errors.ts';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';
import { BitWriter } from '../../test/support/bit-writer.ts';
import { codecFixture, probedStream } from '../../test/support/codec-fixtures.ts';

/** Packs (value, bits) pairs MSB first. */
function bits(...fields: [number, number][]): Buffer {
  let s = '';
  for (const [v, n] of fields) s += v.toString(2).padStart(n, '0');
  s = s.padEnd(Math.ceil(s.length / 8) * 8, '0');
  return Buffer.from(s.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
}

/**
 * Every field parseAudioSpecificConfig reads from `asc`: those given, and
 * otherwise the AAC-LC object type (2), a channelConfiguration of `channels`
 * and 1024-sample frames.
 */
function expectConfig(asc: Buffer, fields: Pick<AacConfig, 'profile' | 'sampleRate' | 'channels' | 'elements'> & Partial<AacConfig>): void {
  expect(parseAudioSpecificConfig(asc)).toEqual({ objectType: 2, channelConfiguration: fields.channels, frameSamples: 1024, ...fields });
}

/** A fixture's config says what ffprobe says of its stream (and `fields`); its prefixes and corruptions parse or throw MediaParseError. */
function expectProbed(name: string, fields: Pick<AacConfig, 'elements'> & Partial<AacConfig>): void {
  const expected = probedStream(name);
  const asc = codecFixture(`${name}.asc`);
  const probed = { profile: expected.profile as string, sampleRate: Number(expected.sample_rate), channels: expected.channels as number };
  expectConfig(asc, { ...probed, ...fields });
  checkPrefixes(asc, parseAudioSpecificConfig);
  checkCorruptions(asc, parseAudioSpecificConfig);
}

describe('AudioSpecificConfig', () => {
  for (const name of ['aac_lc_44100_2', 'aac_lc_48000_1', 'aac_lc_22050_6']) {
    it(`${name} matches ffprobe`, () => expectProbed(name, { elements: expect.any(Array) }));
  }

  it('explicit HE-AAC (SBR) and HE-AACv2 (PS) signalling: the output rate, and frames of 2048 samples at it', () => {
    // AOT 5, 24 kHz core (index 6), stereo, extension 48 kHz (index 3), core AOT 2
    expectConfig(bits([5, 5], [6, 4], [2, 4], [3, 4], [2, 5]), {
      objectType: 5,
      profile: 'HE-AAC',
      sampleRate: 48000,
      channels: 2,
      elements: [{ id: ID_CPE, tag: 0 }],
      frameSamples: 2048,
    });
    // AOT 29, 22.05 kHz core, mono core → stereo output, extension 44.1 kHz
    expect(parseAudioSpecificConfig(bits([29, 5], [7, 4], [1, 4], [4, 4], [2, 5]))).toMatchObject({
      profile: 'HE-AACv2',
      sampleRate: 44100,
      channels: 2,
      frameSamples: 2048,
    });
    // Downsampled SBR: the extension rate is the core's, and so is a frame's length.
    expect(parseAudioSpecificConfig(bits([5, 5], [3, 4], [2, 4], [3, 4], [2, 5]))).toMatchObject({ sampleRate: 48000, frameSamples: 1024 });
  });

  it('channel elements of channelConfiguration 1-7 (table 1.19): 5.1 is an SCE, two CPEs and the LFE', () => {
    expect(parseAudioSpecificConfig(codecFixture('aac_lc_22050_6.asc')).elements).toEqual([
      { id: ID_SCE, tag: 0 },
      { id: ID_CPE, tag: 0 },
      { id: ID_CPE, tag: 1 },
      { id: ID_LFE, tag: 0 },
    ]);
  });

  // ffmpeg 5.1's -aac_pce 1: the 5.1 PCE (its aac_pce_configs) codes the LFE as a side SCE, 7.1's as none of its own.
  for (const [name, elements] of [
    [
      'aac_pce_48000_6',
      [
        [ID_CPE, 0],
        [ID_SCE, 0],
        [ID_SCE, 1],
        [ID_CPE, 1],
      ],
    ],
    [
      'aac_pce_44100_8',
      [
        [ID_CPE, 0],
        [ID_SCE, 0],
        [ID_SCE, 1],
        [ID_CPE, 1],
        [ID_CPE, 2],
      ],
    ],
  ] as const) {
    it(`${name}: channels and elements from the program config element, and ffmpeg's sync extension 0x2b7 without SBR`, () =>
      expectProbed(name, { channelConfiguration: 0, elements: elements.map(([id, tag]) => ({ id, tag })) }));
  }

  // Hand-built (nothing here encodes 960-sample frames or signals SBR after the core's config): AOT 2, then GASpecificConfig.
  it('frameLengthFlag: frames of 960 samples, and 1920 at the output rate of explicit SBR', () => {
    // 48 kHz (index 3), stereo; frameLengthFlag 1, dependsOnCoreCoder 0, extensionFlag 0
    expect(parseAudioSpecificConfig(bits([2, 5], [3, 4], [2, 4], [1, 1], [0, 1], [0, 1]))).toMatchObject({
      profile: 'LC',
      sampleRate: 48000,
      frameSamples: 960,
    });
    // dependsOnCoreCoder with its 14-bit delay before it matters not
    expect(parseAudioSpecificConfig(bits([2, 5], [3, 4], [2, 4], [1, 1], [1, 1], [0x3fff, 14], [0, 1]))).toMatchObject({
      frameSamples: 960,
    });
    // AOT 5, 24 kHz core, stereo, extension 48 kHz, core AOT 2, frameLengthFlag 1
    expect(parseAudioSpecificConfig(bits([5, 5], [6, 4], [2, 4], [3, 4], [2, 5], [1, 1], [0, 1], [0, 1]))).toMatchObject({
      sampleRate: 48000,
      frameSamples: 1920,
    });
  });

  // Hand-built (nothing here encodes LD or ELD): 48 kHz, stereo.
  it('ER AAC LD and ELD: frames of 512 samples, or 480 by frameLengthFlag', () => {
    // AOT 23; GASpecificConfig: frameLengthFlag, dependsOnCoreCoder 0, extensionFlag 1 and three resilience flags; epConfig 0
    const ld = (frameLengthFlag: number) => bits([23, 5], [3, 4], [2, 4], [frameLengthFlag, 1], [0, 1], [1, 1], [0, 3], [0, 2]);
    const stereo = { sampleRate: 48000, channels: 2 };
    expectConfig(ld(0), { objectType: 23, profile: 'LD', ...stereo, elements: [{ id: ID_CPE, tag: 0 }], frameSamples: 512 });
    expectConfig(ld(1), { objectType: 23, profile: 'LD', ...stereo, elements: [{ id: ID_CPE, tag: 0 }], frameSamples: 480 });
    // AOT 31 + 7; ELDSpecificConfig: frameLengthFlag, three resilience flags, ldSbrPresentFlag 0, ELDEXT_TERM; epConfig 0
    const eld = (frameLengthFlag: number) => bits([31, 5], [7, 6], [3, 4], [2, 4], [frameLengthFlag, 1], [0, 3], [0, 1], [0, 4], [0, 2]);
    expectConfig(eld(0), { objectType: 39, profile: 'ELD', ...stereo, elements: [], frameSamples: 512 });
    expectConfig(eld(1), { objectType: 39, profile: 'ELD', ...stereo, elements: [], frameSamples: 480 });
  });

  /**
   * Hand-built with BitWriter (Debian's ffmpeg has no libfdk_aac, the only
   * ELD encoder): ELD at a 24 kHz core, stereo, 480-sample frames, with low
   * delay SBR at `ldSbrSamplingRate`.
   */
  const eldWithSbr = (ldSbrSamplingRate: number) =>
    new BitWriter()
      .u(5, 31)
      .u(6, 39 - 32) // audioObjectType: escape, then ER AAC ELD
      .u(4, 6) // samplingFrequencyIndex: 24 kHz
      .u(4, 2) // channelConfiguration: stereo
      .u(1, 1) // frameLengthFlag: 480
      .u(3, 0) // the three resilience flags
      .u(1, 1) // ldSbrPresentFlag
      .u(1, ldSbrSamplingRate)
      .u(1, 0) // ldSbrCrcFlag
      // ld_sbr_header(2): one sbr_header: bs_amp_res, bs_start_freq, bs_stop_freq, bs_xover_band, bs_reserved, no extra headers
      .u(1, 1)
      .u(4, 5)
      .u(4, 9)
      .u(3, 0)
      .u(2, 0)
      .u(2, 0)
      .u(4, 0) // ELDEXT_TERM
      .u(2, 0) // epConfig
      .bytes();

  it('ELD with low delay SBR: dual rate outputs twice the coded (core) rate, in frames twice as long; single rate the core rate', () => {
    const eld = { objectType: 39, profile: 'ELD', channels: 2, channelConfiguration: 2, elements: [] };
    expect(parseAudioSpecificConfig(eldWithSbr(1))).toEqual({ ...eld, sampleRate: 48000, frameSamples: 960 });
    expect(parseAudioSpecificConfig(eldWithSbr(0))).toEqual({ ...eld, sampleRate: 24000, frameSamples: 480 });
  });

  /** AAC-LC at `rateIndex`, `channels`, its GASpecificConfig (frameLengthFlag), then `tail`. */
  const lcThen = (rateIndex: number, channels: number, frameLengthFlag: number, ...tail: [number, number][]) =>
    bits([2, 5], [rateIndex, 4], [channels, 4], [frameLengthFlag, 1], [0, 1], [0, 1], ...tail);

  it("backward-compatible SBR (sync extension 0x2b7) and PS (0x548): HE-AAC at the SBR rate, frames twice the core's", () => {
    // 24 kHz stereo core; 0x2b7, AOT 5, sbrPresentFlag 1, 48 kHz
    expectConfig(lcThen(6, 2, 0, [0x2b7, 11], [5, 5], [1, 1], [3, 4]), {
      profile: 'HE-AAC',
      sampleRate: 48000,
      channels: 2,
      elements: [{ id: ID_CPE, tag: 0 }],
      frameSamples: 2048,
    });
    // 22.05 kHz mono core; SBR at 44.1 kHz, then 0x548 with psPresentFlag: stereo
    expect(parseAudioSpecificConfig(lcThen(7, 1, 0, [0x2b7, 11], [5, 5], [1, 1], [4, 4], [0x548, 11], [1, 1]))).toMatchObject({
      objectType: 2,
      profile: 'HE-AACv2',
      sampleRate: 44100,
      channels: 2,
      elements: [{ id: ID_SCE, tag: 0 }],
      frameSamples: 2048,
    });
    // 960-sample core frames under SBR: 1920
    expect(parseAudioSpecificConfig(lcThen(6, 2, 1, [0x2b7, 11], [5, 5], [1, 1], [3, 4]))).toMatchObject({ frameSamples: 1920 });
    // sbrPresentFlag 0: LC as the core says
    expect(parseAudioSpecificConfig(lcThen(6, 2, 0, [0x2b7, 11], [5, 5], [0, 1]))).toMatchObject({
      profile: 'LC',
      sampleRate: 24000,
      frameSamples: 1024,
    });
  });

  it('a malformed or cut tail after the core config leaves the core as it says', () => {
    const core = { objectType: 2, profile: 'LC', sampleRate: 24000, channels: 2, frameSamples: 1024 };
    // a reserved SBR sampling frequency index (13)
    expect(parseAudioSpecificConfig(lcThen(6, 2, 0, [0x2b7, 11], [5, 5], [1, 1], [13, 4]))).toMatchObject(core);
    // cut before sbrPresentFlag (at a byte), and another sync word than 0x2b7
    expect(parseAudioSpecificConfig(lcThen(6, 2, 0, [0x2b7, 11], [5, 5], [1, 1], [3, 4]).subarray(0, 4))).toMatchObject(core);
    expect(parseAudioSpecificConfig(lcThen(6, 2, 0, [0x2b6, 11], [5, 5], [1, 1], [3, 4]))).toMatchObject(core);
    // channelConfiguration 0 with its program config element cut short: no channels known, the rest as coded
    expect(parseAudioSpecificConfig(lcThen(6, 0, 1, [0, 10], [2, 4]))).toMatchObject({
      sampleRate: 24000,
      channels: 0,
      elements: [],
      frameSamples: 960,
    });
    const withTail = lcThen(6, 2, 0, [0x2b7, 11], [5, 5], [1, 1], [3, 4], [0x548, 11], [1, 1]);
    checkPrefixes(withTail, parseAudioSpecificConfig);
    checkCorruptions(withTail, parseAudioSpecificConfig);
  });

  it('escape object type (31) and explicit frequency (index 15)', () => {
    // AOT 31 + 10 → 42 (USAC), explicit 37800 Hz, 2 channels
    expectConfig(bits([31, 5], [10, 6], [15, 4], [37800, 24], [2, 4]), {
      objectType: 42,
      profile: 'xHE-AAC',
      sampleRate: 37800,
      channels: 2,
      elements: [],
    });
  });

  it('rejects reserved values', () => {
    expect(() => parseAudioSpecificConfig(bits([2, 5], [13, 4], [2, 4]))).toThrow(MediaParseError);
    expect(() => parseAudioSpecificConfig(bits([0, 5], [4, 4], [2, 4]))).toThrow(MediaParseError);
    expect(() => parseAudioSpecificConfig(Buffer.from([0x12]))).toThrow(MediaParseError);
    expect(() => parseAudioSpecificConfig(bits([2, 5], [15, 4], [0, 24], [2, 4]))).toThrow(/explicit sampling frequency is 0/);
  });
});
