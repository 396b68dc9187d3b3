import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BitWriter } from '../../test/support/bit-writer.ts';
import { codecFixture } from '../../test/support/codec-fixtures.ts';
import { TrackRun, writeFragment } from './fragment.ts';
import { initSegment, type AudioTrackConfig } from './init.ts';
import { silentFrame } from './silence.ts';

const run = promisify(execFile);

/** ffmpeg's decode of a file to 16-bit samples, and what it said at level error. */
async function decodeToSamples(path: string): Promise<{ stdout: Buffer; stderr: string }> {
  const { stdout, stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 's16le', '-'], {
    encoding: 'buffer',
    maxBuffer: 1 << 24,
  });
  return { stdout, stderr: stderr.toString() };
}

/** 48 kHz (sampling_frequency_index 3), AAC-LC. */
const aac = (channelConfiguration: number, channels: number): AudioTrackConfig => ({
  kind: 'audio',
  codec: 'aac',
  // AudioSpecificConfig: object type 2, frequency index 3, the channel configuration, GASpecificConfig's 3 flags off.
  config: new BitWriter().u(5, 2).u(4, 3).u(4, channelConfiguration).u(3, 0).bytes(),
  sampleRate: 48_000,
  channels,
});

/** A frame in an ADTS header (ISO/IEC 14496-3 1.A.2), so that ffmpeg reads it on its own. */
function adts(frame: Buffer, channelConfiguration: number): Buffer {
  const header = new BitWriter()
    .u(12, 0xfff)
    .u(1, 0) // MPEG-4
    .u(2, 0)
    .u(1, 1) // no CRC
    .u(2, 1) // object type 2 - 1
    .u(4, 3)
    .u(1, 0)
    .u(3, channelConfiguration)
    .u(4, 0)
    .u(13, 7 + frame.length)
    .u(11, 0x7ff)
    .u(2, 0)
    .bytes();
  return Buffer.concat([header, frame]);
}

describe('silentFrame', () => {
  // channelConfiguration 1-7: 1, 2, 3, 4, 5, 5.1 and 7.1 channels.
  for (const [configuration, channels] of [
    [1, 1],
    [2, 2],
    [3, 3],
    [4, 4],
    [5, 5],
    [6, 6],
    [7, 8],
  ] as const) {
    it(`makes an AAC-LC frame ffmpeg decodes to ${channels} channels of 1024 zero samples (channelConfiguration ${configuration})`, async () => {
      const frame = silentFrame(aac(configuration, channels))!;
      const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-silence-')), 'silence.aac');
      const frames = 10;
      await writeFile(path, Buffer.concat(Array.from({ length: frames }, () => adts(frame, configuration))));
      const { stdout, stderr } = await decodeToSamples(path);
      expect(stderr).toBe('');
      expect(stdout.length).toBe(frames * 1024 * channels * 2);
      expect(stdout.every((byte) => byte === 0)).toBe(true);
    });
  }

  // ffmpeg's -aac_pce 1 configs (codec/testdata): channelConfiguration 0, the channels' elements in a program config element.
  for (const [name, sampleRate, channels] of [
    ['aac_pce_48000_6', 48_000, 6],
    ['aac_pce_44100_8', 44_100, 8],
  ] as const) {
    it(`makes an AAC-LC frame ffmpeg decodes to ${channels} channels of 1024 zero samples from its program config element (${name})`, async () => {
      const config: AudioTrackConfig = { kind: 'audio', codec: 'aac', config: codecFixture(`${name}.asc`), sampleRate, channels };
      const frames = 10;
      const { stdout, stderr } = await decodeToSamples(await mp4File(config, silentFrame(config)!, frames, 1024));
      expect(stderr).toBe('');
      expect(stdout.length).toBe(frames * 1024 * channels * 2);
      expect(stdout.every((byte) => byte === 0)).toBe(true);
    });
  }

  for (const channels of [1, 2]) {
    it(`makes an Opus frame ffmpeg decodes to ${channels} channel(s) of 20 ms of zero samples`, async () => {
      // OpusHead: version 1, the channels, no pre-skip, 48 kHz, no gain, mapping family 0.
      const head = Buffer.alloc(19);
      head.write('OpusHead', 0, 'latin1');
      head[8] = 1;
      head[9] = channels;
      head.writeUInt32LE(48_000, 12);
      const opus: AudioTrackConfig = { kind: 'audio', codec: 'opus', config: head, sampleRate: 48_000, channels };
      const frames = 10;
      const { stdout, stderr } = await decodeToSamples(await mp4File(opus, silentFrame(opus)!, frames, 960));
      expect(stderr).toBe('');
      expect(stdout.length).toBe(frames * 960 * channels * 2);
      expect(stdout.every((byte) => byte === 0)).toBe(true);
    });
  }

  // MPEG-1, 2 and 2.5 at each of their rates' bands, mono and each stereo mode: [header bytes 1-3, rate, channels, samples].
  for (const [what, header, sampleRate, channels, samples] of [
    ['MPEG-1 44.1 kHz joint stereo', [0xfb, 0x90, 0x64], 44_100, 2, 1152],
    ['MPEG-1 48 kHz mono', [0xfb, 0x94, 0xc4], 48_000, 1, 1152],
    ['MPEG-1 32 kHz dual channel', [0xfb, 0x98, 0x80], 32_000, 2, 1152],
    ['MPEG-2 24 kHz stereo', [0xf3, 0x84, 0x00], 24_000, 2, 576],
    ['MPEG-2 22.05 kHz mono', [0xf3, 0x80, 0xc0], 22_050, 1, 576],
    ['MPEG-2.5 8 kHz joint stereo', [0xe3, 0x88, 0x44], 8_000, 2, 576],
  ] as const) {
    it(`makes an MP3 frame ffmpeg decodes to ${channels} channel(s) of ${samples} zero samples from a ${what} frame's header`, async () => {
      const mp3: AudioTrackConfig = { kind: 'audio', codec: 'mp3', config: Buffer.from([0xff, ...header]), sampleRate, channels };
      const frame = silentFrame(mp3)!;
      const frames = 10;
      const { stdout, stderr } = await decodeToSamples(await mp4File(mp3, frame, frames, samples));
      expect(stderr).toBe('');
      expect(stdout.length).toBe(frames * samples * channels * 2);
      expect(stdout.every((byte) => byte === 0)).toBe(true);
    });
  }

  it('makes an MP3 frame that leaves nothing in the bit reservoir for the frame after it: its main data is all its own', () => {
    // 44.1 kHz stereo at 32 kbit/s: 104 bytes, of which 36 header and side info, 68 main data.
    const frame = silentFrame({
      kind: 'audio',
      codec: 'mp3',
      config: Buffer.from([0xff, 0xfb, 0x90, 0x64]),
      sampleRate: 44_100,
      channels: 2,
    })!;
    expect(frame.length).toBe(104);
    const partLengths = [0, 1, 2, 3].map((part) => {
      // Side info after main_data_begin (9), private_bits (3) and scfsi (8): 59 bits per granule and channel.
      const bit = 32 + 20 + 59 * part;
      return (frame.readUInt32BE(Math.floor(bit / 8)) >>> (20 - (bit % 8))) & 0xfff;
    });
    expect(partLengths.reduce((sum, bits) => sum + bits, 0)).toBe(68 * 8);
  });

  it('makes none where the program config element cannot be read, nor for MPEG audio Layer II or an MP3 frame without a header', () => {
    expect(silentFrame(aac(0, 2))).toBeUndefined();
    const mp3 = (config: Buffer): AudioTrackConfig => ({ kind: 'audio', codec: 'mp3', config, sampleRate: 44_100, channels: 2 });
    expect(silentFrame(mp3(Buffer.from([0xff, 0xfd, 0x90, 0x64])))).toBeUndefined();
    expect(silentFrame(mp3(Buffer.from([0x49, 0x44, 0x33, 0x04])))).toBeUndefined();
    expect(silentFrame(mp3(Buffer.alloc(0)))).toBeUndefined();
  });
});

/** The frame, `frames` times back to back, in an fMP4 file of the track. */
async function mp4File(audio: AudioTrackConfig, frame: Buffer, frames: number, samples: number): Promise<string> {
  const run = new TrackRun(1, false);
  for (let i = 0; i < frames; i++) run.add(i * samples, samples, frame, true, 0);
  const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-silence-')), 'silence.mp4');
  await writeFile(path, Buffer.concat([initSegment([audio]), writeFragment(1, [run])]));
  return path;
}
