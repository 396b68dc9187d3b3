import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import { inspectVideo } from '../flv/tag.ts';
import { keyframeToAnnexB, keyframeToIvf } from './annexb.ts';
import { MediaParseError } from './errors.ts';
import { codecFixture } from '../../test/support/codec-fixtures.ts';

describe('keyframeToAnnexB', () => {
  it('puts parameter sets, then the frame NALs, behind 4-byte start codes', () => {
    const avcc = codecFixture('h264_high_320x240.avcc');
    const frame = Buffer.from([0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06]);
    const out = keyframeToAnnexB('h264', avcc, frame);
    const sps = avcc.subarray(8, 8 + avcc.readUInt16BE(6));
    expect(out.subarray(0, 4)).toEqual(Buffer.from([0, 0, 0, 1]));
    expect(out.subarray(4, 4 + sps.length)).toEqual(sps);
    expect(out.subarray(out.length - 11)).toEqual(Buffer.from([0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x06]));
  });

  it('handles hvcC (VPS, SPS, PPS first) and throws MediaParseError on bad frames', () => {
    const out = keyframeToAnnexB('hevc', codecFixture('hevc_main_320x240.hvcc'), Buffer.from([0, 0, 0, 2, 0x26, 1]));
    expect((out[4]! >> 1) & 0x3f).toBe(32);
    const avcc = codecFixture('h264_high_320x240.avcc');
    expect(() => keyframeToAnnexB('h264', avcc, Buffer.from([0, 0, 0, 9, 1]))).toThrow(MediaParseError);
    // A NAL one byte longer than what is left of the frame.
    expect(() => keyframeToAnnexB('h264', avcc, Buffer.from([0, 0, 0, 3, 0x65, 0x88]))).toThrow(/NAL length 3 exceeds frame/);
  });
});

describe('keyframeToIvf', () => {
  it('writes a DKIF header with the sequence header size', () => {
    const av1c = codecFixture('av1_320x240.av1c');
    const ivf = keyframeToIvf(av1c, Buffer.from([0x32, 1, 0x10]));
    expect(ivf.toString('latin1', 0, 4)).toBe('DKIF');
    expect(ivf.toString('latin1', 8, 12)).toBe('AV01');
    expect([ivf.readUInt16LE(12), ivf.readUInt16LE(14)]).toEqual([320, 240]);
    expect(ivf.readUInt32LE(32)).toBe(ivf.length - 44);
  });

  it("puts the config's OBUs before a frame only when the frame has no sequence header of its own", () => {
    const av1c = codecFixture('av1_320x240.av1c');
    const configObus = av1c.subarray(4);
    const frameOnly = Buffer.from([0x32, 1, 0x10]);
    expect(keyframeToIvf(av1c, frameOnly).subarray(44)).toEqual(Buffer.concat([configObus, frameOnly]));
    // OBU type 1 (OBU_SEQUENCE_HEADER) in bits 6-3 of the first header byte.
    const withSequenceHeader = Buffer.concat([configObus, frameOnly]);
    expect(withSequenceHeader[0]! >> 3).toBe(1);
    expect(keyframeToIvf(av1c, withSequenceHeader).subarray(44)).toEqual(withSequenceHeader);
  });
});

// The snapshot path feeds ffmpeg exactly this (hack/setup.sh installs it, as for every test).
describe('ffmpeg decodes what we build', () => {
  it('H.264 keyframe from the FLV fixture decodes to one 320x240 picture', async () => {
    const { tags } = await readFlvFile(new URL('../flv/testdata/h264_aac.flv', import.meta.url).pathname);
    const video = tags.filter((t) => t.kind === 'video').map((t) => inspectVideo(t.body));
    const config = video.find((v) => v.sequenceHeader)!.data;
    const key = video.find((v) => v.keyframe)!.data;
    const tmp = mkdtempSync(join(tmpdir(), 'annexb-'));
    try {
      writeFileSync(join(tmp, 'k.h264'), keyframeToAnnexB('h264', config, key));
      const out = execFileSync('ffprobe', [
        '-v',
        'error',
        '-count_frames',
        '-show_entries',
        'stream=width,height,nb_read_frames',
        '-of',
        'csv=p=0',
        join(tmp, 'k.h264'),
      ]);
      expect(out.toString().trim()).toBe('320,240,1');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
