import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import type { Subscriber } from '../hub/subscriber.ts';
import { lavfiClip, publishTags, readFlvFile } from '../../test/support/flv-fixture.ts';
import { mpegAudioClipTags } from '../../test/support/mpeg-audio.ts';
import type { FlvTagRecord } from '../flv/demux.ts';
import { adtsConfig } from './adts.ts';
import { crc32Mpeg, PACKET_SIZE } from './packets.ts';
import { TsSegmenter, type TsSegment } from './segmenter.ts';

const run = promisify(execFile);
const fixture = (name: string) => join(import.meta.dirname, '../flv/testdata', name);
let hub: StreamHub;
afterEach(() => hub?.closeAll());

/** Publishes an FLV file's tags through a hub into a TsSegmenter; returns its segments. */
async function segment(file: string, segmentSeconds: number): Promise<TsSegment[]> {
  return segmentTags((await readFlvFile(file)).tags, segmentSeconds);
}

function segmentTags(tags: FlvTagRecord[], segmentSeconds: number): TsSegment[] {
  hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
  const segments: TsSegment[] = [];
  hub.on('publish', (stream) => {
    let segmenter: TsSegmenter;
    const subscriber: Subscriber = {
      kind: 'hls',
      delivery: 'lossless',
      begin: (s) => void (segmenter = new TsSegmenter(s, segmentSeconds, (made) => segments.push(made))),
      pendingBytes: () => 0,
      write: (packet) => segmenter.push(packet),
      close: () => segmenter.finish(),
    };
    stream.subscribe(subscriber, performance.now());
  });
  const { stream } = publishTags(hub, 'live', 'ts', tags);
  hub.unpublish(stream);
  return segments;
}

async function saved(name: string, bytes: Buffer): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'mpegts-')), name);
  await writeFile(path, bytes);
  return path;
}

interface Probed {
  streams: { codec_name: string; codec_type: string }[];
  packets: { codec_type: string; pts: number; dts: number; flags: string }[];
}

async function probe(path: string): Promise<Probed> {
  const args = ['-v', 'error', '-show_entries', 'stream=codec_name,codec_type:packet=codec_type,pts,dts,flags', '-of', 'json', path];
  return JSON.parse((await run('ffprobe', args)).stdout) as Probed;
}

/** What ffmpeg says at level error decoding a file whole: nothing for a clean one ("Packet corrupt", PES errors, decoder errors). */
async function decodeErrors(path: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-']);
  return stderr;
}

/** The layer and channel_mode of each audio frame's header in a TS file, in order (ffprobe's packets, its data's first 4 bytes). */
async function audioFrameHeaders(path: string): Promise<{ layer: number; channelMode: number }[]> {
  const args = ['-v', 'error', '-select_streams', 'a', '-show_entries', 'packet=data', '-show_data', '-of', 'json', path];
  const { packets } = JSON.parse((await run('ffprobe', args, { maxBuffer: 64 << 20 })).stdout) as { packets: { data: string }[] };
  return packets.map(({ data }) => {
    const header = Buffer.from(/00000000: (\w{4}) (\w{4})/.exec(data)!.slice(1).join(''), 'hex');
    return { layer: 4 - ((header[1]! >> 1) & 3), channelMode: header[3]! >> 6 };
  });
}

/**
 * The transport packets of concatenated segments, checked by hand: sync
 * bytes, continuity counters that step by one per PID on each packet with a
 * payload (ffmpeg logs a break at debug level only), PSI sections whose CRC holds.
 */
function expectWellFormedPackets(bytes: Buffer): void {
  expect(bytes.length % PACKET_SIZE).toBe(0);
  const counters = new Map<number, number>();
  for (let at = 0; at < bytes.length; at += PACKET_SIZE) {
    expect(bytes[at]).toBe(0x47);
    const pid = ((bytes[at + 1]! & 0x1f) << 8) | bytes[at + 2]!;
    const counter = bytes[at + 3]! & 0x0f;
    const last = counters.get(pid);
    if (last !== undefined) expect(counter, `PID ${pid} at packet ${at / PACKET_SIZE}`).toBe((last + 1) & 0x0f);
    counters.set(pid, counter);
    if (pid === 0 || pid === 0x1000) {
      const section = bytes.subarray(at + 5);
      const length = ((section[1]! & 0x0f) << 8) | section[2]!;
      expect(crc32Mpeg(section.subarray(0, 3 + length - 4))).toBe(section.readUInt32BE(3 + length - 4));
    }
  }
}

describe('TsSegmenter', () => {
  it('cuts an H.264/AAC stream on keyframes into segments ffprobe reads on their own and whole, timestamps continuous', async () => {
    const clip = await lavfiClip({ width: 320, height: 180, seconds: 6 });
    const segments = await segment(clip, 1);
    expect(segments.length).toBeGreaterThanOrEqual(5);
    const whole = Buffer.concat(segments.map((s) => s.bytes));
    expectWellFormedPackets(whole);
    const path = await saved('whole.ts', whole);
    expect(await decodeErrors(path)).toBe('');
    const { streams, packets } = await probe(path);
    expect(streams.map((s) => `${s.codec_type}:${s.codec_name}`)).toEqual(['video:h264', 'audio:aac']);
    // The video's decode timestamps never go back, and each segment's start is the last one's end.
    const dts = packets.filter((p) => p.codec_type === 'video').map((p) => p.dts);
    expect(dts.every((t, i) => i === 0 || t > dts[i - 1]!)).toBe(true);
    segments.slice(1).forEach((s, i) => expect(s.start).toBeCloseTo(segments[i]!.start + segments[i]!.duration, 3));
    for (const [i, made] of segments.entries()) {
      // Each segment alone: its tables, then a keyframe first; lasting about a second (-g 25 at 25 fps).
      const alone = await probe(await saved(`seg${i}.ts`, made.bytes));
      expect(alone.streams.map((s) => s.codec_name)).toEqual(['h264', 'aac']);
      expect(alone.packets.find((p) => p.codec_type === 'video')!.flags).toMatch(/^K/);
      if (i < segments.length - 1) expect(made.duration).toBeCloseTo(1, 1);
      expect(made.discontinuity).toBe(false);
    }
  }, 60_000);

  it('carries MP3 as it is, as MPEG-1 audio (stream type 3), from the first segment on', async () => {
    const clip = await lavfiClip({ width: 320, height: 180, seconds: 3, audioCodec: ['-c:a', 'libmp3lame'] });
    const segments = await segment(clip, 1);
    const whole = Buffer.concat(segments.map((s) => s.bytes));
    expectWellFormedPackets(whole);
    const path = await saved('mp3.ts', whole);
    expect(await decodeErrors(path)).toBe('');
    const { streams, packets } = await probe(path);
    expect(streams.map((s) => `${s.codec_type}:${s.codec_name}`)).toEqual(['video:h264', 'audio:mp3']);
    // 3 s of 1152-sample frames at 44.1 kHz: 115. The first MP3 frame comes after the first keyframe (MP3 has no
    // header before it), and joins the first segment.
    const audio = packets.filter((p) => p.codec_type === 'audio');
    expect(audio.length).toBeGreaterThanOrEqual(114);
    expect(audio[0]!.pts - Math.min(...packets.filter((p) => p.codec_type === 'video').map((p) => p.pts))).toBeLessThan(0.1 * 90_000);
    expect(segments.every((s) => !s.discontinuity)).toBe(true);
  }, 60_000);

  // Both clips are of the tone in mono at 44.1 kHz (MPEG-1 audio, one TS stream type): the new track goes on in the same program.
  for (const [change, after, expected] of [
    ['to Layer II, which has no silence here (silence.ts), leaves its pause unfilled', ['-c:a', 'mp2'], { layer: 2, channelMode: 3 }],
    ['to stereo fills its pause with stereo silence', ['-c:a', 'libmp3lame', '-ac', '2'], { layer: 3, channelMode: 1 }],
  ] as const) {
    it(`an MP3 track that changes from Layer III mono ${change}: no frame of the first track's silence`, async () => {
      const first = (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6, audioCodec: ['-c:a', 'libmp3lame'] }))).tags;
      const second = (await mpegAudioClipTags(6, [...after, '-ar', '44100'])).filter((tag) => tag.kind === 'audio');
      // Layer III until 2 s, then the other track, its audio paused from 3 to 4.6 s (the video goes on).
      const paused = (tag: FlvTagRecord) => tag.timestamp >= 3000 && tag.timestamp < 4600;
      const tags = [
        ...first.filter((tag) => tag.kind !== 'audio' || tag.timestamp < 2000),
        ...second.filter((tag) => tag.timestamp >= 2000 && !paused(tag)),
      ].sort((a, b) => a.timestamp - b.timestamp);
      const path = await saved('changed.ts', Buffer.concat(segmentTags(tags, 1).map((s) => s.bytes)));
      expect(await decodeErrors(path)).toBe('');
      const headers = await audioFrameHeaders(path);
      const switched = headers.findIndex((header) => header.layer !== 3 || header.channelMode !== 3);
      expect(switched).toBeGreaterThan(0);
      // From the switch on, every frame is the new track's: its own or silence made from its header.
      expect(
        headers.slice(switched).filter((header) => header.layer !== expected.layer || header.channelMode !== expected.channelMode),
      ).toEqual([]);
      const sent = second.filter((tag) => tag.timestamp >= 2000 && !paused(tag)).length;
      // 1.6 s paused: about 61 frames of 1152 samples; Layer II's pause is left as it is.
      if (expected.layer === 2) expect(headers.length - switched).toBe(sent);
      else expect(headers.length - switched - sent).toBeGreaterThanOrEqual(55);
    }, 60_000);
  }

  it('carries HEVC with its parameter sets, and leaves out Opus, which TS players do not take', async () => {
    const segments = await segment(fixture('hevc_opus.flv'), 0.4);
    expect(segments.length).toBeGreaterThanOrEqual(2);
    const path = await saved('hevc.ts', Buffer.concat(segments.map((s) => s.bytes)));
    expect(await decodeErrors(path)).toBe('');
    const { streams, packets } = await probe(path);
    expect(streams.map((s) => s.codec_name)).toEqual(['hevc']);
    expect(packets).toHaveLength(25);
  }, 60_000);
});

describe('adtsConfig', () => {
  it('says what an ADTS header needs of AAC LC and of HE-AAC signalled explicitly (its LC core)', () => {
    // LC, 44.1 kHz (index 4), stereo.
    expect(adtsConfig(Buffer.from([0x12, 0x10]))).toEqual({ profile: 1, samplingFrequencyIndex: 4, channelConfiguration: 2 });
    // SBR (5), core 24 kHz (6), stereo, extension 48 kHz (3), core LC (2).
    expect(adtsConfig(Buffer.from([0x2b, 0x11, 0x88, 0x00]))).toEqual({ profile: 1, samplingFrequencyIndex: 6, channelConfiguration: 2 });
  });

  it('refuses what an ADTS header cannot say', () => {
    expect(adtsConfig(Buffer.from([0x12, 0x00, 0x00]))).toBe('channels in a program config element');
    expect(adtsConfig(Buffer.from([0x12, 0x14]))).toBe('960-sample frames');
    expect(adtsConfig(Buffer.from([0xf8, 0x00, 0x00]))).toMatch(/^audio object type/);
    expect(adtsConfig(Buffer.from([0x17, 0x80, 0x00, 0x00, 0x10]))).toBe('an explicit sample rate');
    expect(adtsConfig(Buffer.from([0x12]))).toBe('an AudioSpecificConfig cut short');
  });
});
