import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { asEnhancedMp3 } from '../../test/support/enhanced-mp3.ts';
import { lavfiClip, readFlvFile } from '../../test/support/flv-fixture.ts';
import type { FlvTagRecord } from '../flv/demux.ts';
import { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { HlsMuxer } from './muxer.ts';

const run = promisify(execFile);
let hub: StreamHub;
afterEach(() => hub?.closeAll());

function push(stream: Stream, tags: FlvTagRecord[]): void {
  for (const tag of tags) {
    if (tag.kind === 'video') stream.pushVideo(tag.timestamp, tag.body, performance.now());
    else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp, tag.body, performance.now());
  }
}

/** The muxer's segments after its last init section, as one file: what a player of its playlist decodes. */
function lastInitFile(muxer: HlsMuxer): Buffer {
  const parts: Buffer[] = [];
  for (let msn = 0; muxer.segment(msn); msn++) parts.push(muxer.segment(msn)!);
  let initId = 0;
  while (muxer.init(initId + 1)) initId++;
  return Buffer.concat([muxer.init(initId)!, ...parts]);
}

async function audioPackets(file: Buffer): Promise<{ codec: string; sampleRate: number; packets: number; start: number }> {
  const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-hls-')), 'out.mp4');
  await writeFile(path, file);
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-count_packets', '-select_streams', 'a'],
    ...['-show_entries', 'stream=codec_name,sample_rate,nb_read_packets,start_time', '-of', 'json', path],
  ]);
  type Probed = { codec_name: string; sample_rate: string; nb_read_packets: string; start_time: string };
  const [audio] = (JSON.parse(stdout) as { streams: Probed[] }).streams;
  return {
    codec: audio!.codec_name,
    sampleRate: Number(audio!.sample_rate),
    packets: Number(audio!.nb_read_packets),
    start: Number(audio!.start_time),
  };
}

const clip = async (audioCodec: string[]) => (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6, audioCodec }))).tags;

/**
 * A stream whose audio switches at 2.5 s from the AAC clip's to `after`'s (its
 * config, if it has one, sent at the switch), into an HLS muxer that joins at
 * 2.9 s: keyframes come every second, so the GOP it is sent (from 2 s) holds
 * audio of both. Returns what ffprobe reads of the audio after the muxer's
 * last init section, and `after`'s frames from the switch.
 */
async function joinAfterAudioSwitch(after: FlvTagRecord[]) {
  const aac = await clip(['-c:a', 'aac']);
  const afterFrames = after.filter((t) => t.kind === 'audio' && t.timestamp >= 2500 && !isAacConfig(t));
  const afterConfig = after.filter(isAacConfig).map((t) => ({ ...t, timestamp: 2500 }));
  const tags = [
    ...aac.filter((t) => t.kind === 'video' || (t.kind === 'audio' && t.timestamp < 2500)),
    ...afterConfig,
    ...afterFrames,
  ].sort((a, b) => a.timestamp - b.timestamp);
  hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const stream = hub.publish('live', 'switch', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
  push(
    stream,
    tags.filter((t) => t.timestamp < 2900),
  );
  const muxer = new HlsMuxer({
    variant: 'fmp4',
    lowLatency: false,
    segmentSeconds: 2,
    partSeconds: 0.5,
    windowSegments: 10,
    maxBytes: 64 << 20,
  });
  stream.subscribe(muxer, performance.now());
  push(
    stream,
    tags.filter((t) => t.timestamp >= 2900),
  );
  hub.closeAll();
  return { probed: await audioPackets(lastInitFile(muxer)), afterFrames };
}

const isAacConfig = (tag: FlvTagRecord) => tag.kind === 'audio' && tag.body[0]! >> 4 === 10 && tag.body[1] === 0;
const isAudioFrame = (tag: FlvTagRecord) => tag.kind === 'audio' && !isAacConfig(tag);

/**
 * `tags` through an HLS muxer from their start. Returns the playlist and what
 * ffprobe reads of the audio in the muxer's segments: each packet's time and size.
 */
async function muxAudio(tags: FlvTagRecord[]) {
  hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const stream = hub.publish('live', 'pause', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
  const muxer = new HlsMuxer({
    variant: 'fmp4',
    lowLatency: false,
    segmentSeconds: 1,
    partSeconds: 0.5,
    windowSegments: 10,
    maxBytes: 64 << 20,
  });
  stream.subscribe(muxer, performance.now());
  push(stream, tags);
  hub.closeAll();
  const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-hls-')), 'out.mp4');
  await writeFile(path, lastInitFile(muxer));
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-select_streams', 'a', '-show_entries', 'packet=pts_time,size', '-of', 'json', path],
  ]);
  const packets = (JSON.parse(stdout) as { packets: { pts_time: string; size: string }[] }).packets;
  const { stderr: decodeErrors } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-']);
  return {
    playlist: muxer.playlistText(),
    audio: packets.map((p) => ({ pts: Number(p.pts_time), size: Number(p.size) })),
    decodeErrors,
  };
}

/**
 * A clip's tags, its audio frames from `from` to `to` (ms) left out as a
 * muted source would, through an HLS muxer (muxAudio); also where the clip's
 * sound comes back (s).
 */
async function muxAudioPause(clipTags: FlvTagRecord[], from: number, to: number) {
  const tags = clipTags.filter((t) => !(isAudioFrame(t) && t.timestamp >= from && t.timestamp < to));
  return { ...(await muxAudio(tags)), soundBack: tags.find((t) => isAudioFrame(t) && t.timestamp >= to)!.timestamp / 1000 };
}

/**
 * The clip's AAC-LC at 24 kHz declared HE-AAC with explicit SBR signalling
 * (48 kHz out): its AudioSpecificConfig rewritten by hand, since nothing here
 * encodes HE-AAC (no libfdk_aac in ffmpeg, none in GStreamer). A decoder
 * finds no SBR data in its frames and upsamples their sound.
 */
function asExplicitSbr(tags: FlvTagRecord[]): FlvTagRecord[] {
  // Object type 5, 24 kHz core (index 6), mono, 48 kHz out (index 3), an AAC-LC core, GASpecificConfig's 3 flags off.
  const config = Buffer.from([0x2b, 0x09, 0x88, 0x00]);
  return tags.map((t) => (isAacConfig(t) ? { ...t, body: Buffer.concat([t.body.subarray(0, 2), config]) } : t));
}

/** Codecs a pause is filled in: the clip's tags, and how long a frame lasts (s). */
const PAUSED_AUDIO: readonly [string, () => Promise<FlvTagRecord[]>, number][] = [
  ['AAC', () => clip(['-c:a', 'aac']), 1024 / 44_100],
  ['MP3', () => clip(['-c:a', 'libmp3lame']), 1152 / 44_100],
  // FLV's flags say 44 kHz: the rate is the frames' own.
  ['MP3 at 48 kHz', () => clip(['-c:a', 'libmp3lame', '-ar', '48000']), 1152 / 48_000],
  // Enhanced RTMP's '.mp3' has no rate flags at all.
  ['MP3 at 48 kHz over Enhanced RTMP', async () => (await clip(['-c:a', 'libmp3lame', '-ar', '48000'])).map(asEnhancedMp3), 1152 / 48_000],
  ['HE-AAC (explicit SBR, a hand-built config)', async () => asExplicitSbr(await clip(['-c:a', 'aac', '-ar', '24000'])), 2048 / 48_000],
];

describe('HlsMuxer', () => {
  it('joining in a GOP where the audio switched from AAC to MP3, labels only the MP3 as MP3: the AAC before has no description', async () => {
    const { probed, afterFrames } = await joinAfterAudioSwitch(await clip(['-c:a', 'libmp3lame']));
    // The AAC frames from 2 s must not go into the MP3 track.
    expect(probed).toMatchObject({ codec: 'mp3', packets: afterFrames.length, start: expect.closeTo(2.5, 1) });
  });

  it('joining in a GOP where the AAC config changed (44.1 to 22.05 kHz), labels only the frames since with the new config', async () => {
    const { probed, afterFrames } = await joinAfterAudioSwitch(await clip(['-c:a', 'aac', '-ar', '22050']));
    // The 44.1 kHz frames from 2 s must not go into the 22.05 kHz track.
    expect(probed).toEqual({ codec: 'aac', sampleRate: 22050, packets: afterFrames.length, start: expect.closeTo(2.5, 1) });
  });

  for (const [codec, clipTags, frame] of PAUSED_AUDIO) {
    for (const [what, from, to] of [
      ['a 3.7 s pause across segment starts', 900, 4600],
      ['a 0.4 s pause within a segment', 2200, 2600],
    ] as const) {
      it(`fills ${what} in the ${codec} audio with silence: one track, one timeline, no discontinuity, the sound back in place`, async () => {
        const { playlist, soundBack, audio, decodeErrors } = await muxAudioPause(await clipTags(), from, to);
        // ffmpeg takes the silent frames (AAC-LC's in an HE-AAC track too) without a word.
        expect(decodeErrors).toBe('');
        expect(playlist).not.toContain('#EXT-X-DISCONTINUITY');
        expect(playlist.match(/#EXT-X-MAP/g)).toHaveLength(1);
        // Every frame follows the one before: no hole for a player to stall at.
        for (let i = 1; i < audio.length; i++) expect(audio[i]!.pts - audio[i - 1]!.pts).toBeCloseTo(frame, 4);
        // The tone (more bytes than a silent frame, the smallest) comes back within one frame of its timestamp, not early.
        const silent = Math.min(...audio.map((p) => p.size));
        const back = audio.find((p) => p.pts > from / 1000 && p.size > silent)!.pts;
        expect(Math.abs(back - soundBack)).toBeLessThan(frame);
      });
    }
  }

  it('writes audio whose timestamps jitter by less than 0.1 s as it came: no silent frame put in, no frame dropped', async () => {
    // Stamped up to 80 ms late, in bursts (a publisher that stamps frames by when it sends them): each burst's first
    // frame lies more than a frame after the one before. Filled before such a frame, as after a pause, the audio
    // would gain silence, run ahead of its timestamps, and lose the frames it then finds already written.
    const tags = (await clip(['-c:a', 'aac']))
      .map((t) => (isAudioFrame(t) ? { ...t, timestamp: Math.ceil(t.timestamp / 80) * 80 } : t))
      .sort((a, b) => a.timestamp - b.timestamp);
    const { audio } = await muxAudio(tags);
    // The frames published, each in its turn (an FLV AAC frame's payload follows 2 header bytes).
    expect(audio.map((p) => p.size)).toEqual(tags.filter(isAudioFrame).map((t) => t.body.length - 2));
  });
});
