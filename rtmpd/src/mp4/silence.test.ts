import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BitWriter } from '../../test/support/bit-writer.ts';
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

  for (const channels of [1, 2]) {
    it(`makes an Opus frame ffmpeg decodes to ${channels} channel(s) of 20 ms of zero samples`, async () => {
      // OpusHead: version 1, the channels, no pre-skip, 48 kHz, no gain, mapping family 0.
      const head = Buffer.alloc(19);
      head.write('OpusHead', 0, 'latin1');
      head[8] = 1;
      head[9] = channels;
      head.writeUInt32LE(48_000, 12);
      const opus: AudioTrackConfig = { kind: 'audio', codec: 'opus', config: head, sampleRate: 48_000, channels };
      const frame = silentFrame(opus)!;
      const samples = new TrackRun(1, false);
      const frames = 10;
      for (let i = 0; i < frames; i++) samples.add(i * 960, 960, frame, true, 0);
      const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-silence-')), 'silence.mp4');
      await writeFile(path, Buffer.concat([initSegment([opus]), writeFragment(1, [samples])]));
      const { stdout, stderr } = await decodeToSamples(path);
      expect(stderr).toBe('');
      expect(stdout.length).toBe(frames * 960 * channels * 2);
      expect(stdout.every((byte) => byte === 0)).toBe(true);
    });
  }

  it('makes none where the channels are in a program config element, nor for MP3', () => {
    expect(silentFrame(aac(0, 2))).toBeUndefined();
    expect(silentFrame({ kind: 'audio', codec: 'mp3', config: Buffer.alloc(0), sampleRate: 44_100, channels: 2 })).toBeUndefined();
  });
});
