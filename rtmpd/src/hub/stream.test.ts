import { describe, expect, it, vi } from 'vitest';
import { parseMpegAudioHeader } from '../codec/mp3.ts';
import { MediaParseError } from '../codec/errors.ts';
import { inspectAudio } from '../flv/tag.ts';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import { FakeSubscriber } from '../../test/support/fake-subscriber.ts';
import { REPEATED_WARNING_INTERVAL_MS } from '../telemetry/interval-report.ts';
import type { JoinBurst } from './join-burst.ts';
import type { MediaPacket } from './packet.ts';
import { Stream } from './stream.ts';

// parseMpegAudioHeader as it is, counted: the hub must not make a header object of every MP3 frame.
vi.mock('../codec/mp3.ts', async (actual) => {
  const mp3 = await actual<typeof import('../codec/mp3.ts')>();
  return { ...mp3, parseMpegAudioHeader: vi.fn(mp3.parseMpegAudioHeader) };
});

// inspectAudio as it is, counted: the hub must not make an inspection object of every frame of its track.
vi.mock('../flv/tag.ts', async (actual) => {
  const tag = await actual<typeof import('../flv/tag.ts')>();
  return { ...tag, inspectAudio: vi.fn(tag.inspectAudio) };
});

const publisher = { protocol: 'rtmp' as const, remoteAddress: '127.0.0.1', close: () => undefined };

/** A stream of its own, and how many times it has described a track so far (onDescribed). */
function describedStream(key: string): { stream: Stream; described: () => number } {
  let described = 0;
  const stream = new Stream('live', key, publisher, {
    gopCacheMaxBytes: 1 << 20,
    playerMaxBufferBytes: 1 << 20,
    onDescribed: () => described++,
  });
  return { stream, described: () => described };
}

/** Serializes what it gets once, cached on the packet, as an HTTP-FLV player does. */
class Recording extends FakeSubscriber {
  override write(packet: MediaPacket): void {
    packet.flvTag ??= Buffer.from(packet.body);
    super.write(packet);
  }
}

/** Real H.264/AAC tags (ffmpeg), each body a slice of Node's shared pool as the chunk reader makes them. */
async function pooledTags() {
  const { tags } = await readFlvFile(new URL('../flv/testdata/h264_aac.flv', import.meta.url).pathname);
  return tags.map((t) => {
    const body = Buffer.allocUnsafe(t.body.length);
    t.body.copy(body);
    return { ...t, body };
  });
}

/** An HTTP-FLV player as the hub sees one: it takes a joiner's burst whole. */
class BurstTaker extends FakeSubscriber {
  readonly bursts: JoinBurst[] = [];

  constructor() {
    super('http-flv');
  }

  writeBurst(burst: JoinBurst): void {
    this.bursts.push(burst);
  }
}

const ownsItsMemory = (b: Buffer) => b.byteOffset === 0 && b.buffer.byteLength === b.length;

describe('Stream', () => {
  it('keeps decoder config and the last keyframe in memory of their own, and no serialized bytes', async () => {
    const stream = new Stream('live', 'own', publisher, { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20 });
    const early = new Recording();
    stream.subscribe(early, 0);
    for (const t of await pooledTags()) {
      if (t.kind === 'video') stream.pushVideo(t.timestamp, t.body, 0);
      else if (t.kind === 'audio') stream.pushAudio(t.timestamp, t.body, 0);
    }
    const late = new Recording();
    stream.subscribe(late, 0);
    for (const packet of [stream.videoHeader, stream.audioHeader, stream.lastKeyframe]) {
      expect(packet).toBeDefined();
      expect(packet!.flvTag).toBeUndefined();
    }
    // A pool slice would keep a whole 64 KiB slab alive for the stream's lifetime.
    expect(ownsItsMemory(stream.videoHeader!.body)).toBe(true);
    expect(ownsItsMemory(stream.audioHeader!.body)).toBe(true);
    // The last keyframe starts the stream's own keyframe buffer, which the next keyframe reuses.
    const keyframe = stream.lastKeyframe!.body;
    expect(keyframe.byteOffset).toBe(0);
    expect(keyframe.buffer.byteLength).toBeLessThanOrEqual(2 * keyframe.length + 4096);
    expect(early.packets.every((p) => p.flvTag === undefined)).toBe(true);
    // The late player starts with config and the GOP since the last keyframe, byte for byte.
    expect(late.packets[0]!.body.equals(stream.videoHeader!.body)).toBe(true);
    const gop = late.packets.slice(2);
    expect(gop[0]!.keyframe).toBe(true);
    expect(gop[0]!.body.equals(stream.lastKeyframe!.body)).toBe(true);
    const sameFromEarly = early.packets.slice(-gop.length);
    gop.forEach((p, i) => {
      expect(p.timestamp).toBe(sameFromEarly[i]!.timestamp);
      expect(p.body.equals(sameFromEarly[i]!.body)).toBe(true);
    });
  });
});

describe('Stream subscribers', () => {
  const options = { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 64 * 1024 };

  async function liveStream(): Promise<Stream> {
    const stream = new Stream('live', 'subs', publisher, options);
    for (const t of await pooledTags()) {
      if (t.kind === 'video') stream.pushVideo(t.timestamp, t.body, 0);
      else if (t.kind === 'audio') stream.pushAudio(t.timestamp, t.body, 0);
    }
    return stream;
  }

  it("describe the audio track again when its frames switch codec (AAC to MP3) or rate, and drop the old codec's header", () => {
    const stream = new Stream('live', 'switch', publisher, { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20 });
    stream.pushAudio(0, Buffer.from([0xaf, 0x00, 0x12, 0x10]), 0); // AAC-LC, 44.1 kHz, stereo
    stream.pushAudio(0, Buffer.from([0xaf, 0x01, 0x21, 0x00]), 0);
    expect(stream.audioTrack?.codec).toBe('aac');
    // MP3 (format 2), 44 kHz, 16-bit, stereo: it has no sequence header, its frames describe it.
    stream.pushAudio(20, Buffer.from([0x2f, 0xff, 0xfb]), 0);
    expect(stream.audioTrack).toEqual({ codec: 'mp3', sampleRate: 44100, channels: 2 });
    // A player or a recording that starts now must not get AAC's config before MP3 frames.
    expect(stream.audioHeader).toBeUndefined();
    // 22 kHz mono: another MP3 track.
    stream.pushAudio(40, Buffer.from([0x2a, 0xff, 0xf3]), 0);
    expect(stream.audioTrack).toEqual({ codec: 'mp3', sampleRate: 22050, channels: 1 });
  });

  it("describe an MP3 track by its frames' header, not FLV's flags: 48 kHz, and a change of rate under the same flags is a new track", () => {
    const stream = new Stream('live', 'mp3', publisher, { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20 });
    // ffmpeg 5.1's tags of libmp3lame at 48 kHz, mono: the flags (0x2e) say 44 kHz, the frame's header 48 kHz.
    stream.pushAudio(0, Buffer.from([0x2e, 0xff, 0xfb, 0x54, 0xc4]), 0);
    const at48k = stream.audioTrack;
    expect(at48k).toEqual({ codec: 'mp3', sampleRate: 48_000, channels: 1, layer: 3, channelMode: 3 });
    stream.pushAudio(24, Buffer.from([0x2e, 0xff, 0xfb, 0x54, 0xc4]), 0);
    expect(stream.audioTrack).toBe(at48k);
    // The same flags, a 44.1 kHz stereo header: another track.
    stream.pushAudio(48, Buffer.from([0x2e, 0xff, 0xfb, 0x50, 0x04]), 0);
    expect(stream.audioTrack).toEqual({ codec: 'mp3', sampleRate: 44_100, channels: 2, layer: 3, channelMode: 0 });
    // Enhanced RTMP's '.mp3' has no flags at all: its frames' header is all there is.
    const enhanced = new Stream('live', 'mp3x', publisher, { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20 });
    enhanced.pushAudio(0, Buffer.from([0x91, ...Buffer.from('.mp3'), 0xff, 0xfb, 0x54, 0xc4]), 0);
    expect(enhanced.audioTrack).toEqual({ codec: 'mp3', sampleRate: 48_000, channels: 1, layer: 3, channelMode: 3 });
    enhanced.pushAudio(24, Buffer.from([0x91, ...Buffer.from('.mp3'), 0xff, 0xf3, 0x80, 0xc4]), 0);
    expect(enhanced.audioTrack).toEqual({ codec: 'mp3', sampleRate: 22_050, channels: 1, layer: 3, channelMode: 3 });
  });

  it('describe an MP3 track anew when its frames change layer or channel mode at the same rate, as when they change rate', () => {
    const { stream, described } = describedStream('mp3mode');
    // Layer III (0xfb), 128 kbit/s at 44.1 kHz (0x90), stereo (0x04); then joint stereo (0x44), two channels still;
    // then Layer II (0xfd) in that mode, twice.
    const tracks = [
      [0x2f, 0xff, 0xfb, 0x90, 0x04],
      [0x2f, 0xff, 0xfb, 0x90, 0x44],
      [0x2f, 0xff, 0xfd, 0x90, 0x44],
      [0x2f, 0xff, 0xfd, 0x90, 0x44],
    ].map((frame, i) => {
      stream.pushAudio(i * 26, Buffer.from(frame), 0);
      return stream.audioTrack;
    });
    expect(new Set(tracks).size).toBe(3);
    expect(tracks[3]).toBe(tracks[2]);
    expect(tracks.slice(0, 3).map((track) => [track?.layer, track?.channelMode, track?.channels])).toEqual([
      [3, 0, 2],
      [3, 1, 2],
      [2, 1, 2],
    ]);
    expect(described()).toBe(3);
  });

  it('compare each MP3 frame with its track without parsing its header into an object: the same rate and channels are the same track', () => {
    const { stream, described } = describedStream('mp3same');
    stream.pushAudio(0, Buffer.from([0x2e, 0xff, 0xfb, 0x54, 0xc4]), 0); // 48 kHz mono, 64 kbit/s
    const track = stream.audioTrack;
    vi.mocked(parseMpegAudioHeader).mockClear();
    for (let i = 1; i <= 100; i++) {
      // Another bitrate (a VBR stream's frames), padding and mode extension; the same version, rate and mode.
      const header = [0xff, 0xfb, (1 + (i % 14)) * 16 + 0x04 + (i & 2), 0xc4 | (i & 0x30)];
      stream.pushAudio(i * 24, Buffer.from([0x2e, ...header]), 0);
    }
    expect(parseMpegAudioHeader).not.toHaveBeenCalled();
    expect(stream.audioTrack).toBe(track);
    expect(described()).toBe(1);
  });

  it('take each MP3 frame of its track without an inspection object, legacy or Enhanced: a frame of another layer is read, and is another track', () => {
    const { stream, described } = describedStream('mp3fast');
    const player = new FakeSubscriber('rtmp');
    stream.subscribe(player, 0);
    // Layer III, 128 kbit/s at 44.1 kHz, joint stereo.
    stream.pushAudio(0, Buffer.from([0x2f, 0xff, 0xfb, 0x90, 0x44, 0x00]), 0);
    const track = stream.audioTrack;
    vi.mocked(inspectAudio).mockClear();
    for (let i = 1; i <= 100; i++) {
      // Another bitrate, padding and mode extension (a VBR stream's frames); the same version, layer, rate and mode.
      const header = [0xff, 0xfb, (1 + (i % 14)) * 16 + (i & 2), 0x40 | (i & 0x30)];
      stream.pushAudio(i * 26, Buffer.from([0x2f, ...header, i]), 0);
    }
    expect(inspectAudio).not.toHaveBeenCalled();
    expect(stream.audioTrack).toBe(track);
    expect(stream.stats.audioFrames).toBe(101);
    // Each as inspectAudio would have said: a frame of the track, its MPEG audio frame after the header byte.
    const last = player.packets.at(-1)!;
    expect([last.frame, last.sequenceHeader, last.payloadOffset, last.audioTrack]).toEqual([true, false, 1, track]);
    // Enhanced RTMP's '.mp3' frames of the same header: the same track, the frame after the FourCC.
    stream.pushAudio(2626, Buffer.from([0x91, ...Buffer.from('.mp3'), 0xff, 0xfb, 0x90, 0x44, 0x00]), 0);
    expect(inspectAudio).not.toHaveBeenCalled();
    expect([player.packets.at(-1)!.payloadOffset, player.packets.at(-1)!.audioTrack]).toEqual([5, track]);
    // Layer II (0xfd) at the same rate and mode is read, and is another track; so is stereo (0x04) after it.
    stream.pushAudio(2652, Buffer.from([0x2f, 0xff, 0xfd, 0x90, 0x44, 0x00]), 0);
    expect(stream.audioTrack).toMatchObject({ codec: 'mp3', layer: 2, channelMode: 1 });
    stream.pushAudio(2678, Buffer.from([0x2f, 0xff, 0xfd, 0x90, 0x04, 0x00]), 0);
    expect(stream.audioTrack).toMatchObject({ codec: 'mp3', layer: 2, channelMode: 0 });
    expect(inspectAudio).toHaveBeenCalledTimes(2);
    expect(described()).toBe(3);
  });

  it('take each G.711 frame of its track without an inspection object: the same format, rate and channels are the same track', () => {
    const { stream, described } = describedStream('g711');
    const player = new FakeSubscriber('rtmp');
    stream.subscribe(player, 0);
    stream.pushAudio(0, Buffer.from([0x72, 0xd5, 0xd5]), 0); // A-law as ffmpeg flags it: 16-bit, mono
    const track = stream.audioTrack;
    vi.mocked(inspectAudio).mockClear();
    for (let i = 1; i <= 100; i++) stream.pushAudio(i * 20, Buffer.from([0x72, i, i]), 0);
    expect(inspectAudio).not.toHaveBeenCalled();
    expect(stream.audioTrack).toBe(track);
    expect(described()).toBe(1);
    expect(stream.stats.audioFrames).toBe(101);
    // Each as inspectAudio would have said: a frame of the track, its payload after the header byte.
    const last = player.packets.at(-1)!;
    expect([last.frame, last.sequenceHeader, last.payloadOffset, last.audioTrack]).toEqual([true, false, 1, track]);
    // Another format or channel count is read, and is another track.
    stream.pushAudio(2020, Buffer.from([0x82, 0xff]), 0);
    expect(stream.audioTrack).toMatchObject({ codec: 'g711u', channels: 1 });
    stream.pushAudio(2040, Buffer.from([0x83, 0xff, 0xff]), 0);
    expect(stream.audioTrack).toMatchObject({ codec: 'g711u', channels: 2 });
    expect(described()).toBe(3);
  });

  it('give each audio packet its track, kept in the GOP cache for a joiner: a repeated AAC header keeps the track, a new one makes another', () => {
    const stream = new Stream('live', 'tracks', publisher, { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20 });
    stream.pushVideo(0, Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]), 0); // an IDR: the GOP starts
    const header44k = Buffer.from([0xaf, 0x00, 0x12, 0x10]); // AAC-LC, 44.1 kHz, stereo
    const frame = Buffer.from([0xaf, 0x01, 0x21, 0x00]);
    for (const [timestamp, body] of [
      [0, header44k],
      [20, frame],
      [40, header44k],
      [60, frame],
      [80, Buffer.from([0xaf, 0x00, 0x13, 0x88])],
      [100, frame],
    ] as const)
      stream.pushAudio(timestamp, body, 0);
    const joiner = new FakeSubscriber('rtmp');
    stream.subscribe(joiner, 0);
    const frames = joiner.packets.filter((packet) => packet.kind === 'audio' && packet.frame);
    expect(frames.map((packet) => packet.audioTrack?.sampleRate)).toEqual([44100, 44100, 22050]);
    expect(frames[0]!.audioTrack).toBe(frames[1]!.audioTrack);
    expect(frames[2]!.audioTrack).toBe(stream.audioTrack);
  });

  it('leave an AAC frame after MP3 but before any AAC config without a track, and report it as a parse error', () => {
    const reported: number[] = [];
    const stream = new Stream('live', 'no-config', publisher, {
      gopCacheMaxBytes: 1 << 20,
      playerMaxBufferBytes: 1 << 20,
      onParseError: (_stream, _err, count) => reported.push(count),
    });
    const player = new FakeSubscriber('rtmp');
    stream.subscribe(player, 0);
    stream.pushAudio(0, Buffer.from([0x2f, 0xff, 0xfb]), 0); // MP3, 44 kHz, stereo
    stream.pushAudio(20, Buffer.from([0xaf, 0x01, 0x21, 0x00]), 0); // an AAC frame, no AudioSpecificConfig sent
    stream.pushAudio(40, Buffer.from([0xaf, 0x01, 0x21, 0x00]), 0);
    const [mp3, ...aac] = player.packets;
    expect(mp3!.audioTrack).toBe(stream.audioTrack);
    // Still relayed (a player may read it), but fMP4, HLS and recordings must not write it under the MP3 track.
    expect(aac.map((packet) => packet.audioTrack)).toEqual([undefined, undefined]);
    expect(stream.audioTrack).toEqual({ codec: 'mp3', sampleRate: 44100, channels: 2 });
    expect(stream.stats.parseErrors).toBe(2);
    expect(reported).toEqual([1]);
  });

  it('begin each subscriber once, before its decoder config and cached GOP', async () => {
    const stream = await liveStream();
    const late = new FakeSubscriber('http-flv');
    stream.subscribe(late, 0);
    expect(late.began).toBe(stream);
    expect(late.writesBeforeBegin).toBe(0);
    expect(late.packets[0]!.sequenceHeader).toBe(true);
    expect(late.packets.length).toBeGreaterThan(2);
  });

  it('hand the players that join between two packets one burst, what a player without writeBurst is written, until the next packet replaces it', async () => {
    const stream = await liveStream();
    const bursts = [new BurstTaker(), new BurstTaker()];
    for (const player of bursts) stream.subscribe(player, 0);
    const plain = new FakeSubscriber('rtmp');
    stream.subscribe(plain, 0);
    const [first, second] = bursts.map((player) => player.bursts[0]!);
    expect(second).toBe(first);
    expect(first!.packets).toEqual(plain.packets);
    expect(first!.packets.slice(0, 3).map((p) => [p.kind, p.sequenceHeader])).toEqual([
      ['video', true],
      ['audio', true],
      ['video', false],
    ]);
    expect(first!.bodyBytes).toBe(plain.packets.reduce((sum, p) => sum + p.body.length, 0));
    // Counted as what it is: each player's share of bytesOut is the burst's bodies.
    expect(stream.bytesOut).toBe(3 * first!.bodyBytes);
    expect(first!.replaced).toBe(false);
    // An AAC frame.
    stream.pushAudio(first!.packets.at(-1)!.timestamp + 1, Buffer.from([0xaf, 0x01, 0x21, 0x10]), 0);
    expect(first!.replaced).toBe(true);
    const late = new BurstTaker();
    stream.subscribe(late, 0);
    expect(late.bursts[0]).not.toBe(first);
    expect(late.bursts[0]!.packets).toHaveLength(first!.packets.length + 1);
  });

  it('deliver every packet to a lossless subscriber however long its queue; a player skips to the next keyframe', async () => {
    const stream = await liveStream();
    const recorder = new FakeSubscriber('recorder', { neverDrains: true });
    const player = new FakeSubscriber('rtmp', { neverDrains: true });
    stream.subscribe(recorder, 0);
    stream.subscribe(player, 0);
    const before = recorder.packets.length;
    // Twice the bound: the player's allowance for the GOP it joined with does not cover it.
    for (let round = 0; round < 2; round++) {
      for (const t of await pooledTags()) {
        if (t.kind === 'video') stream.pushVideo(t.timestamp, t.body, 0);
        else if (t.kind === 'audio') stream.pushAudio(t.timestamp, t.body, 0);
      }
    }
    const fed = recorder.packets.length - before;
    expect(recorder.pending).toBeGreaterThan(options.playerMaxBufferBytes);
    expect(player.packets.length).toBeLessThan(recorder.packets.length);
    expect(stream.stats.framesDropped).toBe(recorder.packets.length - player.packets.length);
    expect(fed).toBeGreaterThan(0);
    // Neither queue moves: only the player is closed as stalled.
    expect(stream.closeStalled(0, 0)).toEqual({ players: 1, relays: 0 });
    expect(player.closed).toEqual(['stalled']);
    expect(recorder.closed).toEqual([]);
  });

  it("close a transcode's ffmpeg that stopped reading as a stalled player is closed, not counted as a player", async () => {
    const stream = await liveStream();
    const transcode = new FakeSubscriber('transcode', { neverDrains: true });
    stream.subscribe(transcode, 0);
    for (const t of await pooledTags()) if (t.kind === 'video') stream.pushVideo(t.timestamp, t.body, 0);
    expect(transcode.pending).toBeGreaterThan(0);
    expect(stream.closeStalled(0, 0)).toEqual({ players: 0, relays: 0 });
    expect(transcode.closed).toEqual(['stalled']);
  });

  it('count subscribers by kind, players apart from recordings, relays to other pods, forwards and transcodes', () => {
    const stream = new Stream('live', 'count', publisher, options);
    const subscribers = [
      new FakeSubscriber('rtmp'),
      new FakeSubscriber('rtmp'),
      new FakeSubscriber('rtmps'),
      new FakeSubscriber('http-flv'),
      new FakeSubscriber('recorder'),
      new FakeSubscriber('relay'),
      new FakeSubscriber('forward'),
      new FakeSubscriber('transcode'),
    ];
    for (const s of subscribers) stream.subscribe(s, 0);
    const counts = { rtmp: 2, rtmps: 1, 'http-flv': 1, recorder: 1, hls: 0, relay: 1, forward: 1, transcode: 1 };
    expect(stream.subscriberCounts()).toEqual(counts);
    expect(stream.playerCount).toBe(4);
    stream.unsubscribe(subscribers[0]!);
    stream.unsubscribe(subscribers[0]!);
    expect(stream.subscriberCounts()).toEqual({ ...counts, rtmp: 1 });
    stream.end('unpublished');
    expect(stream.subscriberCounts()).toEqual({
      rtmp: 0,
      rtmps: 0,
      'http-flv': 0,
      recorder: 0,
      hls: 0,
      relay: 0,
      forward: 0,
      transcode: 0,
    });
    expect(subscribers.slice(1).map((s) => s.closed)).toEqual(subscribers.slice(1).map(() => ['unpublished']));
  });
});

/**
 * A publisher of a long-GOP stream made from the fixture's real H.264/AAC
 * tags: its keyframe, then its inter frames over and over at 25 fps, with
 * an audio frame after each video frame, from `start` ms on.
 */
async function longGopPublisher(stream: Stream, start: number) {
  const tags = await pooledTags();
  const videoHeader = tags.find((t) => t.kind === 'video' && t.body[1] === 0)!;
  const audioHeader = tags.find((t) => t.kind === 'audio' && t.body[1] === 0)!;
  const keyframe = tags.find((t) => t.kind === 'video' && t.body[0] === 0x17 && t.body[1] === 1)!;
  const inter = tags.filter((t) => t.kind === 'video' && t.body[0] === 0x27);
  const audio = tags.filter((t) => t.kind === 'audio' && t.body[1] === 1);
  let time = start;
  let frame = 0;
  stream.setMetadata(time, Buffer.from('onMetaData'), {}, 0);
  stream.pushVideo(time, videoHeader.body, 0);
  stream.pushAudio(time, audioHeader.body, 0);
  return {
    /** Sends `frames` video frames (a keyframe first when `key`), each with an audio frame. */
    frames(frames: number, key = false) {
      for (let i = 0; i < frames; i++, frame++, time += 40) {
        stream.pushVideo(time, key && i === 0 ? keyframe.body : inter[frame % inter.length]!.body, 0);
        stream.pushAudio(time, audio[frame % audio.length]!.body, 0);
      }
    },
    repeatHeaders(size: number) {
      stream.setMetadata(time, Buffer.alloc(size, 1), {}, 0);
      // The same AVC record with a tail: a publisher that repeats a large header.
      stream.pushVideo(time, Buffer.concat([videoHeader.body, Buffer.alloc(size)]), 0);
    },
    get time() {
      return time;
    },
  };
}

/** A player that reads `rate` bytes each time `drain` is called, as a socket moving at a given speed. */
class DrainingPlayer extends FakeSubscriber {
  constructor() {
    super('rtmp', { neverDrains: true });
  }
  drain(bytes: number): void {
    this.pending = Math.max(0, this.pending - bytes);
  }
}

describe('Stream delivery to players', () => {
  const maxBuffer = 64 * 1024;
  const options = { gopCacheMaxBytes: 8 << 20, playerMaxBufferBytes: maxBuffer };

  it('count every byte queued for a stalled player, headers and metadata too; repeated ones replace the held copy', async () => {
    const stream = new Stream('live', 'stalled', publisher, options);
    const publish = await longGopPublisher(stream, 0);
    const stalled = new DrainingPlayer();
    stream.subscribe(stalled, 0);
    let largest = 0;
    for (let round = 0; round < 200; round++) {
      publish.frames(5, round % 25 === 0);
      publish.repeatHeaders(100 * 1024);
      largest = Math.max(largest, 100 * 1024 + stream.videoHeader!.body.length);
    }
    // At most one message beyond the bound: the one that crossed it.
    expect(stalled.pending).toBeLessThanOrEqual(maxBuffer + largest);
    const written = stalled.packets.length;
    // The player drains; it resumes at the next keyframe with the latest config, each once, the decoder config at the keyframe's time.
    stalled.drain(Infinity);
    publish.frames(3);
    expect(stalled.packets.length).toBe(written);
    publish.frames(3, true);
    const resumed = stalled.packets.slice(written);
    // The audio header did not change while it skipped, so it is not sent again.
    expect(resumed.slice(0, 3).map((p) => [p.kind, p.sequenceHeader, p.keyframe])).toEqual([
      ['data', false, false],
      ['video', true, false],
      ['video', false, true],
    ]);
    expect(resumed[0]!.body.equals(stream.metadata!.body)).toBe(true);
    expect(resumed[1]!.body.equals(stream.videoHeader!.body)).toBe(true);
    expect(resumed[1]!.timestamp).toBe(resumed[2]!.timestamp);
    expect(resumed[0]!.timestamp).toBe(stream.metadata!.timestamp);
    expect(resumed.filter((p) => p.sequenceHeader || p.kind === 'data')).toHaveLength(2);
  });

  it('close a player whose socket takes a few bytes now and then, and spare one that reads slower than the stream', async () => {
    const stream = new Stream('live', 'trickle', publisher, options);
    const publish = await longGopPublisher(stream, 0);
    const trickling = new DrainingPlayer();
    const slow = new DrainingPlayer();
    stream.subscribe(trickling, 0);
    stream.subscribe(slow, 0);
    // 4 KiB/s over a 10 s timeout: a reader must take 40 KiB per 10 s, or empty its queue.
    const closed: number[] = [];
    for (let second = 1; second <= 30; second++) {
      const before = stream.stats.bytesIn;
      publish.frames(25, second % 10 === 1);
      const perSecond = stream.stats.bytesIn - before;
      trickling.drain(100);
      slow.drain(perSecond / 3);
      closed.push(stream.closeStalled(second * 1000, 10_000, 4096).players);
    }
    expect(trickling.closed).toEqual(['stalled']);
    expect(closed.indexOf(1)).toBe(9);
    expect(slow.closed).toEqual([]);
    expect(stream.subscriberCounts().rtmp).toBe(1);
  });

  it('send a joining player the whole cached GOP, larger than its bound, then live media without a gap', async () => {
    const stream = new Stream('live', 'long-gop', publisher, options);
    const publish = await longGopPublisher(stream, 1_000_000);
    // Eight seconds into a long GOP.
    publish.frames(200, true);
    expect(stream.gopCacheBytes).toBeGreaterThan(4 * maxBuffer);
    const keeping = new DrainingPlayer();
    const slow = new DrainingPlayer();
    stream.subscribe(keeping, 0);
    stream.subscribe(slow, 0);
    // Config, then 200 video and 200 audio frames.
    expect(keeping.packets).toHaveLength(3 + 400);
    const joined = keeping.pending;
    // Live media arrives at 25 fps; one player reads twice as fast as it comes, the other at a third of that.
    for (let second = 0; second < 30; second++) {
      const before = stream.stats.bytesIn;
      publish.frames(25);
      const perSecond = stream.stats.bytesIn - before;
      keeping.drain(2 * perSecond);
      slow.drain(perSecond / 3);
    }
    expect(keeping.packets).toHaveLength(3 + 400 + 30 * 50);
    const video = keeping.packets.filter((p) => p.kind === 'video' && !p.sequenceHeader).map((p) => p.timestamp);
    video.forEach((t, i) => expect(t).toBe(1_000_000 + 40 * i));
    expect(joined).toBeGreaterThan(maxBuffer);
    // The slow player got the GOP too, but skips live media: it cannot keep up.
    expect(slow.packets.length).toBeGreaterThanOrEqual(3 + 400);
    expect(slow.packets.length).toBeLessThan(keeping.packets.length - 25);
    expect(stream.stats.framesDropped).toBeGreaterThan(0);
  });

  it('send decoder config at the time of the first media packet a joining player gets, metadata at its own', async () => {
    const stream = new Stream('live', 'stamped', publisher, options);
    const publish = await longGopPublisher(stream, 17 * 60 * 1000);
    publish.frames(10, true);
    const joined = new FakeSubscriber();
    stream.subscribe(joined, 0);
    const first = joined.packets.slice(0, 4);
    expect(first.map((p) => [p.kind, p.sequenceHeader || p.kind === 'data'])).toEqual([
      ['data', true],
      ['video', true],
      ['audio', true],
      ['video', false],
    ]);
    expect(first.every((p) => p.timestamp === 17 * 60 * 1000)).toBe(true);
    // The stream's own copies keep their timestamps.
    expect(stream.videoHeader!.timestamp).toBe(17 * 60 * 1000);

    // Without a cached GOP the config waits for the first live packet, and takes its time.
    const uncached = new Stream('live', 'uncached', publisher, { ...options, gopCacheMaxBytes: 0 });
    const live = await longGopPublisher(uncached, 0);
    live.frames(10, true);
    const late = new FakeSubscriber();
    uncached.subscribe(late, 0);
    expect(late.packets).toHaveLength(0);
    live.frames(1);
    // onMetaData stamped later than 0 is a subtitle stream to FFmpeg's FLV demuxer.
    expect(late.packets.map((p) => [p.kind, p.timestamp])).toEqual([
      ['data', 0],
      ['video', 400],
      ['audio', 400],
      ['video', 400],
      ['audio', 400],
    ]);
  });
});

describe('Stream codec errors', () => {
  /** An FLV AVC sequence header whose avcC is cut after its version byte. */
  const brokenAvcHeader = () => Buffer.from([0x17, 0, 0, 0, 0, 0x01]);
  const reports: { err: unknown; count: number }[] = [];
  const streamReporting = (onDescribed?: () => void) => {
    reports.length = 0;
    const options = { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, onDescribed };
    return new Stream('live', 'bad', publisher, { ...options, onParseError: (_, err, count) => reports.push({ err, count }) });
  };

  it("count and report a publisher's unreadable decoder config, the first at once, then at most once an interval with the count", () => {
    const stream = streamReporting();
    const player = new FakeSubscriber();
    stream.subscribe(player, 0);
    stream.pushVideo(0, brokenAvcHeader(), 1000);
    expect(stream.stats.parseErrors).toBe(1);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.err).toBeInstanceOf(MediaParseError);
    expect(reports[0]!.count).toBe(1);
    // Relayed anyway: a player's decoder may read what the parser cannot.
    expect(player.packets.map((p) => p.sequenceHeader)).toEqual([true]);
    for (let i = 1; i <= 3; i++) stream.pushVideo(0, brokenAvcHeader(), 1000 + i);
    stream.pushAudio(0, Buffer.alloc(0), 1004);
    expect(stream.stats.parseErrors).toBe(5);
    expect(reports).toHaveLength(1);
    stream.pushVideo(0, brokenAvcHeader(), 1000 + REPEATED_WARNING_INTERVAL_MS);
    expect(reports.map((r) => r.count)).toEqual([1, 5]);
  });

  it('do not count a fault of ours as a bad packet: it is thrown to the session', async () => {
    const bug = new TypeError('a listener of ours broke');
    const stream = streamReporting(() => {
      throw bug;
    });
    const header = (await pooledTags()).find((t) => t.kind === 'video')!;
    expect(() => stream.pushVideo(header.timestamp, header.body, 0)).toThrow(bug);
    expect(stream.stats.parseErrors).toBe(0);
    expect(reports).toEqual([]);
  });
});
