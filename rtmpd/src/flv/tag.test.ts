import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MediaParseError } from '../codec/errors.ts';
import { checkCorruptions } from '../../test/support/malformed.ts';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import {
  AAC_FRAME_OFFSET,
  inspectAudio,
  inspectVideo,
  isAacFrame,
  LEGACY_VIDEO_PAYLOAD_OFFSET,
  legacyCompositionTime,
  legacyVideoFrameCodec,
  videoKeyframe,
} from './tag.ts';
import { describeVideoTrack } from './track.ts';

const fixture = (name: string) => new URL(`./testdata/${name}`, import.meta.url).pathname;

const CASES = [
  { file: 'h264_aac', codec: 'h264', audio: 'aac', enhanced: false },
  { file: 'h264_mp3', codec: 'h264', audio: 'mp3', enhanced: false },
  { file: 'hevc_opus', codec: 'hevc', audio: 'opus', enhanced: true },
  { file: 'av1_aac', codec: 'av1', audio: 'aac', enhanced: true },
] as const;

describe('inspectVideo / inspectAudio on real FLV files', () => {
  for (const c of CASES) {
    it(`${c.file}: keyframes match ffprobe key_frame flags`, async () => {
      const { tags } = await readFlvFile(fixture(`${c.file}.flv`));
      const expectedKeys = JSON.parse(readFileSync(fixture(`${c.file}.keyframes.json`), 'utf8')) as number[];
      let nalLengthSize = 4;
      const keys: number[] = [];
      let frames = 0;
      let sequenceHeaders = 0;
      for (const tag of tags) {
        if (tag.kind === 'video') {
          const v = inspectVideo(tag.body, nalLengthSize);
          expect(v.codec).toBe(c.codec);
          expect(v.enhanced).toBe(c.enhanced);
          // The relay's shortcut for legacy AVC/HEVC frames says what the inspection says.
          const legacyFrame = !v.enhanced && v.packet === 'frame';
          expect(legacyVideoFrameCodec(tag.body)).toBe(legacyFrame ? v.codec : undefined);
          if (legacyFrame) {
            expect(legacyCompositionTime(tag.body)).toBe(v.compositionTime);
            expect(v.dataOffset).toBe(LEGACY_VIDEO_PAYLOAD_OFFSET);
            expect(videoKeyframe(v.codec, tag.body, LEGACY_VIDEO_PAYLOAD_OFFSET, nalLengthSize)).toBe(v.keyframe);
          }
          if (v.sequenceHeader) {
            sequenceHeaders++;
            expect(v.keyframe).toBe(false);
            nalLengthSize = describeVideoTrack(v).nalLengthSize ?? 4;
          } else if (v.packet === 'frame') {
            frames++;
            expect(v.data.buffer).toBe(tag.body.buffer); // zero-copy
            if (v.keyframe) keys.push(tag.timestamp + v.compositionTime);
            // The header's frame-type bits agree with the bitstream for these encoders.
            expect(v.frameType === 1).toBe(v.keyframe);
          }
        } else if (tag.kind === 'audio') {
          const a = inspectAudio(tag.body);
          expect(a.codec).toBe(c.audio);
          expect(a.enhanced).toBe(c.enhanced);
          // The relay's shortcut for AAC frames says what the inspection says.
          const aacFrame = a.codec === 'aac' && !a.enhanced && a.packet === 'frame';
          expect(isAacFrame(tag.body)).toBe(aacFrame);
          if (aacFrame) expect(a.dataOffset).toBe(AAC_FRAME_OFFSET);
        }
      }
      expect(sequenceHeaders).toBe(1);
      expect(frames).toBeGreaterThan(10);
      expect(keys).toEqual(expectedKeys);
    });
  }

  it('reads composition times and the legacy audio header', async () => {
    const { tags } = await readFlvFile(fixture('h264_aac.flv'));
    const video = tags.filter((t) => t.kind === 'video').map((t) => inspectVideo(t.body));
    expect(video.some((v) => v.compositionTime > 0)).toBe(true);
    const audio = tags.filter((t) => t.kind === 'audio').map((t) => inspectAudio(t.body));
    expect(audio[0]).toMatchObject({ codec: 'aac', sequenceHeader: true, soundRate: 44100, soundSize: 16, channels: 2 });
    expect(audio[1]!.sequenceHeader).toBe(false);
    const mp3 = (await readFlvFile(fixture('h264_mp3.flv'))).tags.find((t) => t.kind === 'audio')!;
    expect(inspectAudio(mp3.body)).toMatchObject({ codec: 'mp3', sequenceHeader: false, soundRate: 44100, channels: 1 });
  });

  it('reads the Enhanced end-of-sequence marker', async () => {
    const { tags } = await readFlvFile(fixture('hevc_opus.flv'));
    const last = tags.filter((t) => t.kind === 'video').at(-1)!;
    expect(inspectVideo(last.body)).toMatchObject({ codec: 'hevc', endOfSequence: true, keyframe: false });
  });
});

describe('inspectVideo edge cases', () => {
  const hevcFrame = Buffer.from([0, 0, 0, 3, 19 << 1, 1, 0xaa]); // IDR_W_RADL

  it('accepts legacy CodecID 12 HEVC', () => {
    const body = Buffer.concat([Buffer.from([0x1c, 1, 0, 0, 40]), hevcFrame]);
    expect(inspectVideo(body)).toMatchObject({ codec: 'hevc', keyframe: true, compositionTime: 40, enhanced: false });
  });

  it('decodes a negative composition time', () => {
    const body = Buffer.concat([Buffer.from([0x27, 1, 0xff, 0xff, 0xd8]), Buffer.from([0, 0, 0, 1, 0x41])]);
    expect(inspectVideo(body)).toMatchObject({ compositionTime: -40, keyframe: false });
  });

  it('uses the bitstream, not the frame-type bits, for keyframe', () => {
    // Frame type 1 (key) but a non-IDR slice.
    expect(inspectVideo(Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])).keyframe).toBe(false);
    // Frame type 2 (inter) but an IDR slice.
    expect(inspectVideo(Buffer.from([0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x65])).keyframe).toBe(true);
  });

  it('honours nalLengthSize', () => {
    expect(inspectVideo(Buffer.from([0x17, 1, 0, 0, 0, 0, 1, 0x65]), 2).keyframe).toBe(true);
  });

  it('skips a v2 ModEx prelude (TimestampOffsetNano)', () => {
    // packetType ModEx(7), size 3 (UI8 2 + 1), data, then modExType 0 | packetType CodedFramesX(3), FourCC
    const body = Buffer.concat([Buffer.from([0x97, 2, 0, 0x10, 0x20, 0x03]), Buffer.from('hvc1'), hevcFrame]);
    expect(inspectVideo(body)).toMatchObject({ codec: 'hevc', packet: 'frame', keyframe: true, compositionTime: 0 });
  });

  it('skips a ModEx prelude of 300 bytes, its size in the UI16 after a 255', () => {
    const size = Buffer.from([255, 0, 0]);
    size.writeUInt16BE(300 - 1, 1);
    const body = Buffer.concat([Buffer.from([0x97]), size, Buffer.alloc(300, 0x55), Buffer.from([0x03]), Buffer.from('hvc1'), hevcFrame]);
    expect(inspectVideo(body)).toMatchObject({ codec: 'hevc', packet: 'frame', keyframe: true });
  });

  it('refuses multitrack and unknown codecs with MediaParseError', () => {
    expect(() => inspectVideo(Buffer.from([0x96, 0x00, 0x61, 0x76, 0x63, 0x31]))).toThrow(/multitrack/);
    expect(() => inspectVideo(Buffer.concat([Buffer.from([0x90]), Buffer.from('xxxx')]))).toThrow(MediaParseError);
    expect(() => inspectVideo(Buffer.from([0x12, 0]))).toThrow(/codec id 2/);
    expect(() => inspectVideo(Buffer.alloc(0))).toThrow(MediaParseError);
  });

  it('reports metadata and command frames as non-pictures', () => {
    const meta = inspectVideo(Buffer.concat([Buffer.from([0x94]), Buffer.from('av01'), Buffer.from([2, 0, 0])]));
    expect(meta).toMatchObject({ packet: 'metadata', sequenceHeader: false, keyframe: false });
    expect(inspectVideo(Buffer.from([0x57, 0])).packet).toBe('command');
    expect(inspectVideo(Buffer.from([0xd1, 1])).packet).toBe('command');
  });

  it('VP9 keyframe bit from the uncompressed header', () => {
    const vp9 = (b: number) => inspectVideo(Buffer.concat([Buffer.from([0x93]), Buffer.from('vp09'), Buffer.from([b])]));
    expect(vp9(0b10_0_0_0_0_00).keyframe).toBe(true); // profile 0, show_existing 0, KEY_FRAME
    expect(vp9(0b10_0_0_0_1_00).keyframe).toBe(false); // non-key
    expect(vp9(0b10_0_0_1_0_00).keyframe).toBe(false); // show_existing_frame
  });

  it('never throws anything but MediaParseError on corrupted real messages', async () => {
    for (const c of CASES) {
      const { tags } = await readFlvFile(fixture(`${c.file}.flv`));
      const video = tags.filter((t) => t.kind === 'video').slice(0, 4);
      const audio = tags.filter((t) => t.kind === 'audio').slice(0, 2);
      for (const t of video) checkCorruptions(t.body.subarray(0, 64), (b) => inspectVideo(b), 800);
      for (const t of audio) checkCorruptions(t.body.subarray(0, 32), (b) => inspectAudio(b), 400);
    }
  });
});

describe('inspectAudio edge cases', () => {
  it('covers Enhanced audio FourCCs and packet types', () => {
    const ex = (type: number, fourcc: string) =>
      inspectAudio(Buffer.concat([Buffer.from([0x90 | type]), Buffer.from(fourcc), Buffer.from([1])]));
    expect(ex(0, 'Opus')).toMatchObject({ codec: 'opus', sequenceHeader: true, enhanced: true });
    expect(ex(1, 'mp4a')).toMatchObject({ codec: 'aac', packet: 'frame' });
    expect(ex(1, '.mp3').codec).toBe('mp3');
    expect(ex(1, 'ac-3').codec).toBe('ac3');
    expect(ex(1, 'ec-3').codec).toBe('eac3');
    expect(ex(0, 'fLaC').codec).toBe('flac');
    expect(ex(2, 'Opus').packet).toBe('end-of-sequence');
    expect(ex(4, 'Opus').packet).toBe('multichannel-config');
    expect(ex(1, 'Opus').data).toEqual(Buffer.from([1]));
    expect(() => ex(5, 'Opus')).toThrow(/multitrack/);
    expect(() => ex(1, 'abcd')).toThrow(MediaParseError);
  });

  it('covers legacy formats', () => {
    expect(inspectAudio(Buffer.from([0x72, 0])).codec).toBe('g711a');
    expect(inspectAudio(Buffer.from([0x82, 0])).codec).toBe('g711u');
    expect(inspectAudio(Buffer.from([0xb6, 0])).codec).toBe('speex');
    expect(inspectAudio(Buffer.from([0x3f, 0])).codec).toBe('pcm');
    expect(inspectAudio(Buffer.from([0x62, 0])).codec).toBe('nellymoser');
    expect(() => inspectAudio(Buffer.from([0x12, 0]))).toThrow(/sound format 1/);
    expect(() => inspectAudio(Buffer.from([0xaf]))).toThrow(MediaParseError);
    expect(() => inspectAudio(Buffer.from([0xaf, 7]))).toThrow(MediaParseError);
  });
});
