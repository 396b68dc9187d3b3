import { describe, expect, it } from 'vitest';
import { parseAudioSpecificConfig } from './aac.ts';
import { MediaParseError } from './errors.ts';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';
import { codecFixture, probedStream } from '../../test/support/codec-fixtures.ts';

/** Packs (value, bits) pairs MSB first. */
function bits(...fields: [number, number][]): Buffer {
  let s = '';
  for (const [v, n] of fields) s += v.toString(2).padStart(n, '0');
  s = s.padEnd(Math.ceil(s.length / 8) * 8, '0');
  return Buffer.from(s.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
}

describe('AudioSpecificConfig', () => {
  for (const name of ['aac_lc_44100_2', 'aac_lc_48000_1', 'aac_lc_22050_6']) {
    it(`${name} matches ffprobe`, () => {
      const expected = probedStream(name);
      const asc = codecFixture(`${name}.asc`);
      expect(parseAudioSpecificConfig(asc)).toEqual({
        objectType: 2,
        profile: expected.profile,
        sampleRate: Number(expected.sample_rate),
        channels: expected.channels,
        channelConfiguration: expected.channels,
        frameSamples: 1024,
      });
      checkPrefixes(asc, parseAudioSpecificConfig);
      checkCorruptions(asc, parseAudioSpecificConfig);
    });
  }

  it('explicit HE-AAC (SBR) and HE-AACv2 (PS) signalling: the output rate, and frames of 2048 samples at it', () => {
    // AOT 5, 24 kHz core (index 6), stereo, extension 48 kHz (index 3), core AOT 2
    expect(parseAudioSpecificConfig(bits([5, 5], [6, 4], [2, 4], [3, 4], [2, 5]))).toEqual({
      objectType: 5,
      profile: 'HE-AAC',
      sampleRate: 48000,
      channels: 2,
      channelConfiguration: 2,
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

  it('escape object type (31) and explicit frequency (index 15)', () => {
    // AOT 31 + 10 → 42 (USAC), explicit 37800 Hz, 2 channels
    expect(parseAudioSpecificConfig(bits([31, 5], [10, 6], [15, 4], [37800, 24], [2, 4]))).toEqual({
      objectType: 42,
      profile: 'xHE-AAC',
      sampleRate: 37800,
      channels: 2,
      channelConfiguration: 2,
      frameSamples: 1024,
    });
  });

  it('rejects reserved values', () => {
    expect(() => parseAudioSpecificConfig(bits([2, 5], [13, 4], [2, 4]))).toThrow(MediaParseError);
    expect(() => parseAudioSpecificConfig(bits([0, 5], [4, 4], [2, 4]))).toThrow(MediaParseError);
    expect(() => parseAudioSpecificConfig(Buffer.from([0x12]))).toThrow(MediaParseError);
    expect(() => parseAudioSpecificConfig(bits([2, 5], [15, 4], [0, 24], [2, 4]))).toThrow(/explicit sampling frequency is 0/);
  });
});
