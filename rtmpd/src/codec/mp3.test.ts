import { describe, expect, it } from 'vitest';
import { parseMpegAudioHeader } from './mp3.ts';

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
