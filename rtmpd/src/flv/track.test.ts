import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkCorruptions, checkPrefixes } from '../../test/support/malformed.ts';
import { lavfiClip, readFlvFile } from '../../test/support/flv-fixture.ts';
import { runCommand } from '../../test/support/processes.ts';
import { inspectAudio, inspectVideo } from './tag.ts';
import { describeAudioTrack, describeVideoTrack } from './track.ts';

const fixture = (name: string) => new URL(`./testdata/${name}`, import.meta.url).pathname;

async function tracks(name: string) {
  const { tags } = await readFlvFile(fixture(name));
  const v = tags
    .filter((t) => t.kind === 'video')
    .map((t) => inspectVideo(t.body))
    .find((x) => x.sequenceHeader);
  const a = tags.filter((t) => t.kind === 'audio').map((t) => inspectAudio(t.body))[0]!;
  return { video: v && describeVideoTrack(v), audio: describeAudioTrack(a), v, a };
}

describe('describeVideoTrack / describeAudioTrack (values from ffprobe)', () => {
  it('h264_aac.flv', async () => {
    const t = await tracks('h264_aac.flv');
    expect(t.video).toEqual({ codec: 'h264', profile: 'High', level: '1.3', width: 320, height: 240, fps: 25, nalLengthSize: 4 });
    expect(t.audio).toEqual({ codec: 'aac', profile: 'LC', sampleRate: 44100, channels: 2 });
  });

  it('h264_mp3.flv (cropped 640x360, Main)', async () => {
    const t = await tracks('h264_mp3.flv');
    expect(t.video).toMatchObject({ codec: 'h264', profile: 'Main', width: 640, height: 360, fps: 30 });
    expect(t.audio).toEqual({ codec: 'mp3', sampleRate: 44100, channels: 1, layer: 3, channelMode: 3 });
  });

  // ffmpeg flags G.711 as 5.5 kHz (0x72: SoundRate 0), and reads it back as 8 kHz, its only rate in FLV.
  it.each(['pcm_alaw', 'pcm_mulaw'])('%s from ffmpeg: 8 kHz mono, as ffprobe says', async (encoder) => {
    const clip = await lavfiClip({ width: 160, height: 90, seconds: 1, audioCodec: ['-c:a', encoder, '-ar', '8000', '-ac', '1'] });
    const { tags } = await readFlvFile(clip);
    const audio = describeAudioTrack(inspectAudio(tags.find((t) => t.kind === 'audio')!.body));
    const probed = await runCommand('ffprobe', [
      '-v',
      'error',
      '-select_streams',
      'a',
      '-show_entries',
      'stream=sample_rate,channels',
      '-of',
      'csv=p=0',
      clip,
    ]);
    expect(probed.stdout.trim()).toBe('8000,1');
    expect(audio).toEqual({ codec: encoder === 'pcm_alaw' ? 'g711a' : 'g711u', sampleRate: 8000, channels: 1 });
  });

  it('hevc_opus.flv (Enhanced)', async () => {
    const t = await tracks('hevc_opus.flv');
    expect(t.video).toMatchObject({ codec: 'hevc', profile: 'Main', width: 320, height: 240, nalLengthSize: 4 });
    expect(t.audio).toEqual({ codec: 'opus', sampleRate: 48000, channels: 2 });
  });

  it('av1_aac.flv (Enhanced, mp4a)', async () => {
    const t = await tracks('av1_aac.flv');
    expect(t.video).toMatchObject({ codec: 'av1', profile: 'Main', width: 320, height: 240 });
    expect(t.audio).toEqual({ codec: 'aac', profile: 'LC', sampleRate: 48000, channels: 1 });
  });

  it('accepts the AV1 MPEG2TSSequenceStart video descriptor', () => {
    const av1c = readFileSync(new URL('../codec/testdata/av1_320x240.av1c', import.meta.url));
    const body = Buffer.concat([Buffer.from([0x95]), Buffer.from('av01'), Buffer.from([0x80, av1c.length]), av1c]);
    expect(describeVideoTrack(inspectVideo(body))).toMatchObject({ codec: 'av1', width: 320, height: 240 });
  });

  it('sequence headers: every prefix / corruption gives a result or MediaParseError', async () => {
    for (const name of ['h264_aac.flv', 'hevc_opus.flv', 'av1_aac.flv']) {
      const { v, a } = await tracks(name);
      const vhead = Buffer.from(v!.data);
      const parseV = (data: Buffer) => describeVideoTrack({ ...v!, data });
      checkPrefixes(vhead.subarray(0, 300), parseV);
      checkCorruptions(vhead.subarray(0, 300), parseV, 1000);
      const parseA = (data: Buffer) => describeAudioTrack({ ...a, data });
      checkPrefixes(Buffer.from(a.data), parseA);
      checkCorruptions(Buffer.from(a.data), parseA, 500);
    }
  });
});
