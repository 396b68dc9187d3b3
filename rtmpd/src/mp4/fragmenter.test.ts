import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import type { Subscriber } from '../hub/subscriber.ts';
import { BitWriter } from '../../test/support/bit-writer.ts';
import { lavfiClip, publishFlv, readFlvFile } from '../../test/support/flv-fixture.ts';
import { FLV_FILE_HEADER, flvTag } from '../flv/mux.ts';
import { MAX_FRAGMENT_BYTES } from './fragment.ts';
import { Fragmenter, MAX_FRAGMENT_SAMPLES, STEP_FORWARD_SECONDS, type Fragment, type FragmenterOptions } from './fragmenter.ts';

const run = promisify(execFile);
const fixture = (name: string) => join(import.meta.dirname, '../flv/testdata', name);
let hub: StreamHub;
afterEach(() => hub?.closeAll());

interface Muxed {
  inits: Buffer[];
  fragments: Fragment[];
  /** The last init segment and the fragments after it: a file a recorder would write. */
  lastFile: Buffer[];
}

/** Publishes an FLV fixture through a hub into a Fragmenter; returns what it produced. */
async function fragment(file: string, options: FragmenterOptions): Promise<Muxed> {
  hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
  const muxed: Muxed = { inits: [], fragments: [], lastFile: [] };
  hub.on('publish', (stream) => {
    let fragmenter: Fragmenter;
    const subscriber: Subscriber = {
      kind: 'recorder',
      delivery: 'lossless',
      begin: (s: Stream) => {
        fragmenter = new Fragmenter(s, options, {
          init: (init) => {
            muxed.inits.push(init);
            muxed.lastFile = [init];
          },
          fragment: (f) => {
            muxed.fragments.push(f);
            muxed.lastFile.push(f.bytes);
          },
        });
      },
      pendingBytes: () => 0,
      write: (packet: MediaPacket) => fragmenter.push(packet),
      close: () => fragmenter.finish(),
    };
    stream.subscribe(subscriber, performance.now());
  });
  const { stream } = await publishFlv(hub, 'live', 'mp4', file);
  hub.unpublish(stream);
  return muxed;
}

async function ffprobe(
  path: string,
): Promise<{ codecs: string[]; frames: number; audioFrames: number; duration: number; audioDuration: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-count_frames',
    '-show_entries',
    'stream=codec_name,codec_type,nb_read_frames,duration:format=duration',
    '-of',
    'json',
    path,
  ]);
  const out = JSON.parse(stdout) as {
    streams: { codec_name: string; codec_type: string; nb_read_frames: string; duration: string }[];
    format: { duration: string };
  };
  return {
    codecs: out.streams.map((s) => s.codec_name).sort(),
    frames: Number(out.streams.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0),
    audioFrames: Number(out.streams.find((s) => s.codec_type === 'audio')?.nb_read_frames ?? 0),
    duration: Number(out.format.duration),
    audioDuration: Number(out.streams.find((s) => s.codec_type === 'audio')?.duration),
  };
}

/** Writes the muxed file to a temporary directory and probes it. */
async function probe(muxed: Muxed): Promise<Awaited<ReturnType<typeof ffprobe>>> {
  const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-mp4-')), 'out.mp4');
  await writeFile(path, Buffer.concat(muxed.lastFile));
  return ffprobe(path);
}

describe('Fragmenter', () => {
  it.each([
    ['h264_aac.flv', ['aac', 'h264'], 25],
    ['hevc_opus.flv', ['hevc', 'opus'], 25],
    ['av1_aac.flv', ['aac', 'av1'], 25],
    // MP3 has no sequence header: its track appears with its first frame, after the first keyframe, while the
    // first fragment gathers: a new init segment takes it in, with the video held (before, the fMP4 started again
    // at the next keyframe, 6 frames later, and lost those).
    ['h264_mp3.flv', ['h264', 'mp3'], 15],
  ])('turns %s into fMP4 that ffprobe decodes whole', async (file, codecs, frames) => {
    const muxed = await fragment(fixture(file), { segmentSeconds: 0.4, fragmentSeconds: 0.1 });
    expect(muxed.inits).toHaveLength(file.includes('mp3') ? 2 : 1);
    expect(muxed.fragments.length).toBeGreaterThan(3);
    const probed = await probe(muxed);
    expect(probed.codecs).toEqual(codecs);
    expect(probed.frames).toBe(frames);
  });

  it('takes a switch from AAC to MP3 as a new audio config: a new init segment at the next keyframe (HLS: a discontinuity)', async () => {
    const clip = async (audioCodec: string) =>
      (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6, audioCodec: ['-c:a', audioCodec] }))).tags;
    const [aac, mp3] = await Promise.all([clip('aac'), clip('libmp3lame')]);
    const tags = [
      ...aac.filter((t) => t.kind !== 'audio' || t.timestamp < 2500),
      ...mp3.filter((t) => t.kind === 'audio' && t.timestamp >= 2500),
    ].sort((a, b) => a.timestamp - b.timestamp);
    const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-mp4-')), 'switch.flv');
    await writeFile(path, Buffer.concat([FLV_FILE_HEADER(true, true), ...tags.map((t) => flvTag(t.kind, t.timestamp, t.body))]));
    // HLS's options: 2 s segments of one fragment each.
    const muxed = await fragment(path, { segmentSeconds: 2, fragmentSeconds: 2 });
    expect(muxed.inits).toHaveLength(2);
    // The switch at 2.5 s ends the segment at the 3 s keyframe; the next starts with the MP3 since the switch.
    expect((await probe(muxed)).codecs).toEqual(['h264', 'mp3']);
  });

  /** An FLV file of `seconds` of H.264 (keyframes every second) whose AAC audio is kept where `keepAudio` says. */
  async function clipWithAudio(seconds: number, keepAudio: (ms: number) => boolean): Promise<string> {
    const { tags } = await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds, audioCodec: ['-c:a', 'aac'] }));
    const kept = tags.filter((t) => t.kind !== 'audio' || keepAudio(t.timestamp));
    const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-mp4-')), 'audio.flv');
    await writeFile(path, Buffer.concat([FLV_FILE_HEADER(true, true), ...kept.map((t) => flvTag(t.kind, t.timestamp, t.body))]));
    return path;
  }

  it('leaves an audio track that ended out of the segments that start after it: no file declares a track with no samples', async () => {
    const muxed = await fragment(await clipWithAudio(10, (ms) => ms < 2500), { segmentSeconds: 2, fragmentSeconds: 2 });
    // The audio ends at 2.5 s; the segment at 6 s (3 s of silence at a segment's start) has video alone.
    const probed = await probe(muxed);
    expect(probed.codecs).toEqual(['h264']);
    expect(probed.frames).toBeGreaterThan(0);
    expect(muxed.inits).toHaveLength(2);
  });

  it('takes an ended audio track back when its frames come again, at the next keyframe', async () => {
    const muxed = await fragment(await clipWithAudio(12, (ms) => ms < 2500 || ms >= 7500), { segmentSeconds: 2, fragmentSeconds: 2 });
    // Left out at 6 s, back at 8 s with the frames since 7.5 s: 4.5 s of 44.1 kHz AAC, 193 frames.
    expect(muxed.inits).toHaveLength(3);
    const probed = await probe(muxed);
    expect(probed.codecs).toEqual(['aac', 'h264']);
    expect(probed.audioFrames).toBeGreaterThan(190);
  });

  it('gives an MPEG-1 Layer III frame (44.1 kHz) 1152 samples: the audio lasts as long as the video', async () => {
    const probed = await probe(await fragment(fixture('h264_mp3.flv'), { segmentSeconds: 0.4, fragmentSeconds: 0.1 }));
    expect(probed.audioDuration).toBeGreaterThan(0.9 * probed.duration);
  });

  /** A stream of AAC audio only (44.1 kHz stereo, its config sent) whose fragments, 1 s long, land in the array returned. */
  function audioStreamFragments(): { stream: Stream; fragments: Fragment[] } {
    hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
    const stream = hub.publish('live', 'still', { protocol: 'rtmp', remoteAddress: 'test', close: () => {} });
    const fragments: Fragment[] = [];
    const fragmenter = new Fragmenter(
      stream,
      { segmentSeconds: 4, fragmentSeconds: 1 },
      { init: () => {}, fragment: (f) => fragments.push(f) },
    );
    const subscriber: Subscriber = {
      kind: 'recorder',
      delivery: 'lossless',
      begin: () => {},
      pendingBytes: () => 0,
      write: (packet: MediaPacket) => fragmenter.push(packet),
      close: () => {},
    };
    stream.subscribe(subscriber, performance.now());
    stream.pushAudio(0, Buffer.from([0xaf, 0x00, 0x12, 0x10]), performance.now()); // AAC-LC, 44.1 kHz, stereo
    return { stream, fragments };
  }

  it('cuts a fragment at MAX_FRAGMENT_SAMPLES when the timestamps stand still', () => {
    const { stream, fragments } = audioStreamFragments();
    // Every frame stamped 0: before, one fragment gathered them all until the stream ended.
    for (let i = 0; i < 2.5 * MAX_FRAGMENT_SAMPLES; i++) stream.pushAudio(0, Buffer.from([0xaf, 0x01, 0x21, 0x00]), performance.now());
    expect(fragments).toHaveLength(2);
  });

  it('cuts a fragment at MAX_FRAGMENT_BYTES, before the sample that would pass it, however short its media time', () => {
    const { stream, fragments } = audioStreamFragments();
    // 1 MiB frames, 20 ms apart: cut by media time alone, a 1 s fragment would gather 50 MiB of them.
    const frame = Buffer.concat([Buffer.from([0xaf, 0x01]), Buffer.alloc(1 << 20)]);
    for (let i = 0; i < 20; i++) stream.pushAudio(i * 20, frame, performance.now());
    expect(fragments.map((f) => f.bytes.length > MAX_FRAGMENT_BYTES && f.bytes.length < MAX_FRAGMENT_BYTES + 4096)).toEqual([true, true]);
  });

  it('holds at most MAX_FRAGMENT_SAMPLES audio frames for the next segment, however small, then starts it at once', async () => {
    const { tags } = await readFlvFile(fixture('h264_aac.flv'));
    const video = tags.filter((t) => t.kind === 'video' && t.timestamp < 500);
    hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
    const stream = hub.publish('live', 'tiny', { protocol: 'rtmp', remoteAddress: 'test', close: () => {} });
    const inits: Buffer[] = [];
    const fragmenter = new Fragmenter(
      stream,
      { segmentSeconds: 4, fragmentSeconds: 0.1 },
      { init: (init) => inits.push(init), fragment: () => {} },
    );
    stream.subscribe(
      {
        kind: 'recorder',
        delivery: 'lossless',
        begin: () => {},
        pendingBytes: () => 0,
        write: (packet) => fragmenter.push(packet),
        close: () => {},
      },
      performance.now(),
    );
    for (const tag of video) stream.pushVideo(tag.timestamp, tag.body, performance.now());
    // A late audio config after fragments of the segment left: its frames wait for the next keyframe, which never comes.
    stream.pushAudio(500, Buffer.from([0xaf, 0x00, 0x12, 0x10]), performance.now());
    // 2-byte frames: 25,000 of them are 50 KB, far below the 4 MiB of bytes held audio may take.
    for (let i = 0; i < 2.5 * MAX_FRAGMENT_SAMPLES; i++) stream.pushAudio(500, Buffer.from([0xaf, 0x01, 0x21, 0x00]), performance.now());
    // Held by bytes alone, they would wait for the stream's end, and no new segment would start.
    expect(inits).toHaveLength(2);
  });

  it('starts segments on keyframes and keeps fragments near their target', async () => {
    const { fragments } = await fragment(fixture('hevc_opus.flv'), { segmentSeconds: 0.35, fragmentSeconds: 0.1 }); // keyframe every 10 frames (0.4 s)
    const segmentStarts = [fragments[0]!, ...fragments.filter((_, i) => fragments[i - 1]?.endsSegment)];
    expect(segmentStarts.length).toBeGreaterThanOrEqual(2);
    for (const start of segmentStarts) expect(start.independent).toBe(true);
    // Every fragment but each segment's last holds 0.1 s, give or take half a 40 ms frame.
    for (const f of fragments.filter((f) => !f.endsSegment)) expect(Math.abs(f.duration - 0.1)).toBeLessThanOrEqual(0.021);
    // Fragments tile the timeline.
    for (let i = 1; i < fragments.length; i++)
      expect(fragments[i]!.start).toBeCloseTo(fragments[i - 1]!.start + fragments[i - 1]!.duration, 6);
  });

  it('cuts a segment that sees no keyframe for maxSegmentSeconds', async () => {
    const { fragments } = await fragment(fixture('hevc_opus.flv'), { segmentSeconds: 0.35, fragmentSeconds: 0.1, maxSegmentSeconds: 0.2 });
    const ends = fragments.filter((f) => f.endsSegment).map((f) => f.start + f.duration);
    const starts = [fragments[0]!.start, ...ends.slice(0, -1)];
    expect(ends.length).toBeGreaterThan(3);
    // A 40 ms frame past the bound at most; keyframes come every 0.4 s, so some segments start without one.
    starts.forEach((start, i) => expect(ends[i]! - start).toBeLessThanOrEqual(0.2 + 0.041));
    expect(fragments.some((f, i) => fragments[i - 1]?.endsSegment && !f.independent)).toBe(true);
  });

  it('holds the video clock when a frame comes with an earlier timestamp than the one before', async () => {
    const { tags } = await readFlvFile(fixture('h264_aac.flv'));
    const video = tags.filter((t) => t.kind === 'video');
    // The 5th video frame (not a keyframe) claims to come 100 ms before the 4th.
    const late = video[5]!;
    expect(late.body[0]! >> 4).toBe(2);
    const moved = tags.map((t) => flvTag(t.kind, t === late ? video[4]!.timestamp - 100 : t.timestamp, t.body));
    const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-mp4-')), 'late.flv');
    await writeFile(path, Buffer.concat([FLV_FILE_HEADER(true, true), ...moved]));
    const muxed = await fragment(path, { segmentSeconds: 0.4, fragmentSeconds: 0.1 });
    for (const f of muxed.fragments) expect(f.duration).toBeGreaterThanOrEqual(0);
    for (let i = 1; i < muxed.fragments.length; i++)
      expect(muxed.fragments[i]!.start).toBeCloseTo(muxed.fragments[i - 1]!.start + muxed.fragments[i - 1]!.duration, 6);
    expect((await probe(muxed)).frames).toBe(25);
  });

  it('starts a new timeline when the video clock jumps forward by more than STEP_FORWARD_SECONDS', async () => {
    const { tags } = await readFlvFile(fixture('hevc_opus.flv'));
    // Enhanced RTMP: frame type 1 (key), packet type 1 or 3 (coded frames), every 0.4 s.
    const keyframes = tags.filter((t) => t.kind === 'video' && ((t.body[0]! >> 4) & 7) === 1 && [1, 3].includes(t.body[0]! & 0x0f));
    // From the second keyframe on, 14 h later: before, the frame before it was given a 14 h duration, which
    // trun's 32 bits cannot hold at 90 kHz, and the write threw (a fuzzed publisher took rtmpd down with it).
    const jump = keyframes[1]!.timestamp;
    const later = 14 * 3600 * 1000;
    expect(later).toBeGreaterThan(STEP_FORWARD_SECONDS * 1000);
    const moved = tags.map((t) => flvTag(t.kind, t.timestamp >= jump ? t.timestamp + later : t.timestamp, t.body));
    const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-mp4-')), 'jump.flv');
    await writeFile(path, Buffer.concat([FLV_FILE_HEADER(true, true), ...moved]));
    const muxed = await fragment(path, { segmentSeconds: 0.4, fragmentSeconds: 0.1 });
    expect(muxed.inits).toHaveLength(2);
    for (const f of muxed.fragments) expect(f.duration).toBeLessThan(1);
    expect((await probe(muxed)).codecs).toEqual(['hevc', 'opus']);
  });

  // Hand-built AudioSpecificConfigs (nothing here encodes any of them): the object type (LD's 23; ELD's 39, escaped
  // as 31 and 7), 48 kHz and stereo, then its specific config (frameLengthFlag first) and SBR's sync extension.
  it.each([
    ['960-sample AAC-LC (frameLengthFlag) at 48 kHz', new BitWriter().u(5, 2).u(4, 3).u(4, 2).u(3, 0b100), 960 / 48_000],
    [
      'HE-AAC signalled after a 24 kHz core (sync extension 0x2b7, SBR at 48 kHz)',
      new BitWriter().u(5, 2).u(4, 6).u(4, 2).u(3, 0).u(11, 0x2b7).u(5, 5).u(1, 1).u(4, 3),
      2048 / 48_000,
    ],
    // GASpecificConfig: frameLengthFlag 1, dependsOnCoreCoder 0, extensionFlag 1 and its three resilience flags; epConfig 0
    ['480-sample ER AAC LD (frameLengthFlag)', new BitWriter().u(5, 23).u(4, 3).u(4, 2).u(3, 0b101).u(3, 0).u(2, 0), 480 / 48_000],
    // ELDSpecificConfig: frameLengthFlag 0, three resilience flags, no low delay SBR, ELDEXT_TERM; epConfig 0
    ['512-sample ER AAC ELD', new BitWriter().u(5, 31).u(6, 7).u(4, 3).u(4, 2).u(1, 0).u(3, 0).u(1, 0).u(4, 0).u(2, 0), 512 / 48_000],
  ])('times %s by its frames: 48 kHz, and the audio lasts as long as its timestamps say', async (_, config, frameSeconds) => {
    const count = 50;
    const frame = Buffer.from([0xaf, 0x01, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]);
    const tags = Array.from({ length: count }, (_, i) => flvTag('audio', Math.round(i * frameSeconds * 1000), frame));
    const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-mp4-')), 'aac.flv');
    const header = Buffer.concat([Buffer.from([0xaf, 0x00]), config.bytes()]);
    await writeFile(path, Buffer.concat([FLV_FILE_HEADER(true, false), flvTag('audio', 0, header), ...tags]));
    const { inits, fragments } = await fragment(path, { segmentSeconds: 0.4, fragmentSeconds: 0.1 });
    expect(inits.map(mdhdTimescale)).toEqual([48_000]);
    expect(fragments.reduce((sum, f) => sum + f.duration, 0)).toBeCloseTo(count * frameSeconds, 6);
  });

  it('reads an Opus packet of 32 frames (code 3) as 80 ms', async () => {
    const { tags } = await readFlvFile(fixture('hevc_opus.flv'));
    const [header, ...frames] = tags.filter((t) => t.kind === 'audio');
    // Audio only, one packet every 80 ms: TOC config 16 (CELT, 2.5 ms frames), code 3, then M = 32 frames.
    const packet = Buffer.concat([frames[0]!.body.subarray(0, 5), Buffer.from([(16 << 3) | 3, 32]), Buffer.alloc(64)]);
    const count = 10;
    const audioOnly = [flvTag('audio', 0, header!.body), ...Array.from({ length: count }, (_, i) => flvTag('audio', i * 80, packet))];
    const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-mp4-')), 'opus.flv');
    await writeFile(path, Buffer.concat([FLV_FILE_HEADER(true, false), ...audioOnly]));
    const { fragments } = await fragment(path, { segmentSeconds: 0.4, fragmentSeconds: 0.1 });
    expect(fragments.reduce((sum, f) => sum + f.duration, 0)).toBeCloseTo(count * 0.08, 6);
  });
});

/** The timescale of the (first) track's mdhd in an init segment. */
function mdhdTimescale(init: Buffer): number {
  // mdhd version 0: size, type, version and flags, creation and modification times, then the timescale.
  return init.readUInt32BE(init.indexOf('mdhd') + 16);
}
