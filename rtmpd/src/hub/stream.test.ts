import { describe, expect, it } from 'vitest';
import { readFlvFile } from '../flv/demux.ts';
import type { MediaPacket } from './packet.ts';
import { Stream } from './stream.ts';
import type { Subscriber } from './subscriber.ts';

const publisher = { protocol: 'rtmp' as const, remoteAddress: '127.0.0.1', close: () => undefined };

class Recording implements Subscriber {
  readonly protocol = 'rtmp' as const;
  readonly packets: MediaPacket[] = [];
  pendingBytes = () => 0;
  write(packet: MediaPacket): void {
    // What an HTTP-FLV player does: serialize once, cached on the packet.
    packet.flvTag ??= Buffer.from(packet.body);
    this.packets.push(packet);
  }
  close = () => undefined;
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
