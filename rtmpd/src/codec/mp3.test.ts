import { describe, expect, it } from 'vitest';
import { mpegAudioFrameSamples, mpegAudioVersion, parseMpegAudioHeader } from './mp3.ts';

describe('parseMpegAudioHeader', () => {
  it("reads the version, layer, rate and channels a frame's header gives, whatever FLV's flags say", () => {
    // ffmpeg 5.1's FLV of libmp3lame at 48 kHz, mono: the tag's flags (0x2e) say 44 kHz.
    expect(parseMpegAudioHeader(Buffer.from([0xff, 0xfb, 0x54, 0xc4]))).toEqual({
      version: 1,
      layer: 3,
      sampleRate: 48_000,
      channelMode: 3,
      channels: 1,
    });
    // MPEG-2 22.05 kHz mono; MPEG-2.5 8 kHz stereo (32 kHz's quarter); MPEG-1 Layer II at 32 kHz.
    expect(parseMpegAudioHeader(Buffer.from([0xff, 0xf3, 0x80, 0xc4]))).toMatchObject({ version: 2, sampleRate: 22_050, channels: 1 });
    expect(parseMpegAudioHeader(Buffer.from([0xff, 0xe3, 0x88, 0x04]))).toMatchObject({ version: 2.5, sampleRate: 8_000, channels: 2 });
    expect(parseMpegAudioHeader(Buffer.from([0xff, 0xfd, 0x98, 0x04]))).toMatchObject({ version: 1, layer: 2, sampleRate: 32_000 });
  });

  it('finds no header where a frame starts with none, or with a reserved version, layer or rate', () => {
    for (const bytes of [
      [0x49, 0x44, 0x33, 0x04], // an ID3 tag
      [0xff, 0xfb, 0x94], // truncated
      [0xff, 0xeb, 0x94, 0x64], // version 01
      [0xff, 0xf9, 0x94, 0x64], // layer 00
      [0xff, 0xfb, 0x9c, 0x64], // sampling_frequency 11
    ]) {
      expect(parseMpegAudioHeader(Buffer.from(bytes))).toBeUndefined();
    }
  });
});

describe('mpegAudioFrameSamples', () => {
  it("gives a frame's samples by its header's layer and version: Layer III's halve below MPEG-1, Layer I's and II's do not", () => {
    const samples = (bytes: number[]) => mpegAudioFrameSamples(parseMpegAudioHeader(Buffer.from(bytes))!);
    expect(samples([0xff, 0xff, 0x94, 0x04])).toBe(384); // Layer I, MPEG-1 44.1 kHz
    expect(samples([0xff, 0xf7, 0x94, 0x04])).toBe(384); // Layer I, MPEG-2 22.05 kHz
    expect(samples([0xff, 0xfd, 0x98, 0x04])).toBe(1152); // Layer II, MPEG-1 32 kHz
    expect(samples([0xff, 0xf5, 0xe4, 0xc4])).toBe(1152); // Layer II, MPEG-2 24 kHz, as ffmpeg's mp2 encoder writes it
    expect(samples([0xff, 0xfb, 0x54, 0xc4])).toBe(1152); // Layer III, MPEG-1 48 kHz
    expect(samples([0xff, 0xf3, 0x80, 0xc4])).toBe(576); // Layer III, MPEG-2 22.05 kHz
    expect(samples([0xff, 0xe3, 0x88, 0x04])).toBe(576); // Layer III, MPEG-2.5 8 kHz
  });

  it('finds the version a header gives from its rate alone (the versions share no rate)', () => {
    for (const version of [0, 2, 3]) {
      for (const rate of [0, 1, 2]) {
        const header = parseMpegAudioHeader(Buffer.from([0xff, 0xe2 | (version << 3), rate << 2, 0]))!;
        expect(mpegAudioVersion(header.sampleRate), `${header.sampleRate} Hz`).toBe(header.version);
      }
    }
  });
});
