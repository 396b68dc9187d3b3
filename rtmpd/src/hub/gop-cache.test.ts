import { describe, expect, it } from 'vitest';
import { prng, randomInt } from '../../test/support/random.ts';
import { GopCache, PACKET_COST_BYTES } from './gop-cache.ts';
import { MediaPacket, PacketFlag } from './packet.ts';

const packet = (kind: 'video' | 'audio', size: number, keyframe = false, sequenceHeader = false) =>
  new MediaPacket(kind, 0, Buffer.alloc(size), 0, (keyframe ? PacketFlag.keyframe : 0) | (sequenceHeader ? PacketFlag.sequenceHeader : 0));

describe('GopCache', () => {
  it('holds the packets since the last keyframe', () => {
    const cache = new GopCache(1000);
    cache.add(packet('video', 10)); // before any keyframe: useless to a player
    const key1 = packet('video', 10, true);
    cache.add(key1);
    cache.add(packet('audio', 5));
    expect(cache.snapshot()).toHaveLength(2);
    const key2 = packet('video', 10, true);
    cache.add(key2);
    expect(cache.snapshot()).toEqual([key2]);
    expect(cache.bytes).toBe(10);
  });

  it("gives back every field of a packet: a joining HLS muxer or recording reads frames' payload and composition time", () => {
    const cache = new GopCache(10_000);
    const { keyframe, frame } = PacketFlag;
    const sent = [
      new MediaPacket('video', 0xffff_fff0, Buffer.alloc(9, 1), 12.25, keyframe | frame, 5, 80),
      new MediaPacket('audio', 0xffff_fff5, Buffer.alloc(4, 2), 13.5, frame, 2),
      new MediaPacket('video', 3, Buffer.alloc(7, 3), 14, frame, 5, -40),
      new MediaPacket('video', 4, Buffer.alloc(2, 4), 15),
    ];
    cache.add(sent[0]!, true);
    for (const p of sent.slice(1)) cache.add(p);
    expect(cache.snapshot()).toEqual(sent);
  });

  it('leaves decoder config out (players get it separately)', () => {
    const cache = new GopCache(1000);
    cache.add(packet('video', 10, true));
    cache.add(packet('audio', 2, false, true));
    expect(cache.snapshot()).toHaveLength(1);
  });

  it('drops a GOP that outgrows the bound and resumes at the next keyframe', () => {
    // Two packets' cost and 100 bytes of bodies.
    const cache = new GopCache(2 * PACKET_COST_BYTES + 100);
    expect(cache.add(packet('video', 60, true))).toBe(false);
    // It says so once, for the stream's rtmpd_stream_gop_cache_overflows_total.
    expect(cache.add(packet('video', 60))).toBe(true);
    expect(cache.snapshot()).toHaveLength(0);
    expect(cache.bytes).toBe(0);
    expect(cache.add(packet('video', 60))).toBe(false); // not collecting until a keyframe
    expect(cache.snapshot()).toHaveLength(0);
    cache.add(packet('video', 30, true));
    expect(cache.snapshot()).toHaveLength(1);
  });

  it('counts what each packet costs, not only its body: a GOP of tiny messages outgrows the bound', () => {
    const cache = new GopCache(1024 * 1024);
    cache.add(packet('video', 1000, true));
    // 2-byte audio messages, 3 bytes each on the wire: 200 KB of bodies, before taken as 200 KB.
    let overflowed = false;
    for (let i = 0; i < 100_000 && !overflowed; i++) overflowed = cache.add(packet('audio', 2));
    expect(overflowed).toBe(true);
    cache.add(packet('video', 1000, true));
    for (let i = 0; i < 1000; i++) cache.add(packet('audio', 2));
    expect(cache.snapshot()).toHaveLength(1001);
  });

  it('caches nothing when disabled', () => {
    const cache = new GopCache(0);
    cache.add(packet('video', 1, true));
    expect(cache.snapshot()).toHaveLength(0);
  });

  it('keeps exact copies across many GOPs of varying sizes, block boundaries, large and owned bodies', () => {
    const cache = new GopCache(8 << 20);
    const rand = prng(7);
    const random = (n: number) => randomInt(rand, n);
    const filled = (kind: 'video' | 'audio', size: number, keyframe: boolean) => {
      const body = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i++) body[i] = random(256);
      return new MediaPacket(kind, random(1 << 30), body, 0, keyframe ? PacketFlag.keyframe : 0);
    };
    for (let gop = 0; gop < 20; gop++) {
      const sent = [filled('video', 1 + random(40_000), true)];
      for (let i = 0; i < 5 + random(60); i++) sent.push(filled(random(2) ? 'audio' : 'video', 1 + random(6000), false));
      // Some bodies are owned (kept as they are), the rest copied into the blocks around them.
      for (const p of sent) cache.add(p, random(4) === 0);
      const originals = sent.map((p) => Buffer.from(p.body));
      const snapshot = cache.snapshot();
      expect(snapshot.map((p) => p.timestamp)).toEqual(sent.map((p) => p.timestamp));
      expect(snapshot.map((p) => p.kind)).toEqual(sent.map((p) => p.kind));
      snapshot.forEach((p, i) => expect(p.body.equals(originals[i]!)).toBe(true));
      expect(cache.bytes).toBe(originals.reduce((n, b) => n + b.length, 0));
    }
  });

  it('copies small bodies in, and hands each joiner memory of its own', () => {
    const cache = new GopCache(1000);
    const key = packet('video', 10, true);
    cache.add(key);
    key.body.fill(2);
    const first = cache.snapshot();
    first[0]!.body.fill(1);
    expect(cache.snapshot()[0]!.body.equals(Buffer.alloc(10))).toBe(true);
  });

  it('copies large bodies too: a publisher body may be a view of a read buffer that is reused', () => {
    const cache = new GopCache(1 << 20);
    const readBuffer = Buffer.alloc(65536, 7);
    cache.add(new MediaPacket('video', 0, readBuffer.subarray(0, 40_000), 0, PacketFlag.keyframe));
    cache.add(new MediaPacket('video', 40, readBuffer.subarray(40_000, 60_000), 0));
    readBuffer.fill(0);
    const snapshot = cache.snapshot();
    expect(snapshot.map((p) => p.body.length)).toEqual([40_000, 20_000]);
    for (const p of snapshot) expect(p.body.every((b) => b === 7)).toBe(true);
  });

  it('shares a body the stream owns instead of copying it, and still copies for joiners', () => {
    const cache = new GopCache(1 << 20);
    const keyframe = new MediaPacket('video', 0, Buffer.alloc(30_000, 5), 0, PacketFlag.keyframe);
    cache.add(keyframe, true);
    cache.add(packet('audio', 100));
    // Kept by reference: a change to the owned body shows (the stream never changes it; the test does).
    keyframe.body[0] = 9;
    const snapshot = cache.snapshot();
    expect(snapshot[0]!.body[0]).toBe(9);
    expect(snapshot[0]!.body.buffer).not.toBe(keyframe.body.buffer);
  });
});
