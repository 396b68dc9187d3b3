import { describe, expect, it } from 'vitest';
import { readFlvFile } from '../flv/demux.ts';
import { FakeSubscriber } from '../../test/support/fake-subscriber.ts';
import type { MediaPacket } from './packet.ts';
import { Stream } from './stream.ts';

const publisher = { protocol: 'rtmp' as const, remoteAddress: '127.0.0.1', close: () => undefined };

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
    const kept = [stream.videoHeader, stream.audioHeader, stream.lastKeyframe];
    for (const packet of kept) {
      expect(packet).toBeDefined();
      // A pool slice would keep a whole 64 KiB slab alive for the stream's lifetime.
      expect(ownsItsMemory(packet!.body)).toBe(true);
      expect(packet!.flvTag).toBeUndefined();
    }
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

  it('begin each subscriber once, before its decoder config and cached GOP', async () => {
    const stream = await liveStream();
    const late = new FakeSubscriber('http-flv');
    stream.subscribe(late, 0);
    expect(late.began).toBe(stream);
    expect(late.writesBeforeBegin).toBe(0);
    expect(late.packets[0]!.sequenceHeader).toBe(true);
    expect(late.packets.length).toBeGreaterThan(2);
  });

  it('deliver every packet to a lossless subscriber however long its queue; a player skips to the next keyframe', async () => {
    const stream = await liveStream();
    const recorder = new FakeSubscriber('recorder', { neverDrains: true });
    const player = new FakeSubscriber('rtmp', { neverDrains: true });
    stream.subscribe(recorder, 0);
    stream.subscribe(player, 0);
    const before = recorder.packets.length;
    for (const t of await pooledTags()) {
      if (t.kind === 'video') stream.pushVideo(t.timestamp, t.body, 0);
      else if (t.kind === 'audio') stream.pushAudio(t.timestamp, t.body, 0);
    }
    const fed = recorder.packets.length - before;
    expect(recorder.pending).toBeGreaterThan(options.playerMaxBufferBytes);
    expect(player.packets.length).toBeLessThan(recorder.packets.length);
    expect(stream.stats.framesDropped).toBe(recorder.packets.length - player.packets.length);
    expect(fed).toBeGreaterThan(0);
    // Neither queue moves: only the player is closed as stalled.
    expect(stream.closeStalled(0, 0)).toBe(1);
    expect(player.closed).toEqual(['stalled']);
    expect(recorder.closed).toEqual([]);
  });

  it('count subscribers by kind, players apart from recordings', () => {
    const stream = new Stream('live', 'count', publisher, options);
    const subscribers = [
      new FakeSubscriber('rtmp'),
      new FakeSubscriber('rtmp'),
      new FakeSubscriber('http-flv'),
      new FakeSubscriber('recorder'),
    ];
    for (const s of subscribers) stream.subscribe(s, 0);
    expect(stream.subscriberCounts()).toEqual({ rtmp: 2, 'http-flv': 1, recorder: 1 });
    expect(stream.playerCount).toBe(3);
    stream.unsubscribe(subscribers[0]!);
    stream.unsubscribe(subscribers[0]!);
    expect(stream.subscriberCounts()).toEqual({ rtmp: 1, 'http-flv': 1, recorder: 1 });
    stream.end('unpublished');
    expect(stream.subscriberCounts()).toEqual({ rtmp: 0, 'http-flv': 0, recorder: 0 });
    expect(subscribers.slice(1).map((s) => s.closed)).toEqual([['unpublished'], ['unpublished'], ['unpublished']]);
  });
});
