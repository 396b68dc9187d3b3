import { describe, expect, it } from 'vitest';
import { GopCache } from './gop-cache.ts';
import { MediaPacket } from './packet.ts';

const packet = (kind: 'video' | 'audio', size: number, keyframe = false, sequenceHeader = false) =>
  new MediaPacket(kind, 0, Buffer.alloc(size), keyframe, sequenceHeader, 0);

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

  it('leaves decoder config out (players get it separately)', () => {
    const cache = new GopCache(1000);
    cache.add(packet('video', 10, true));
    cache.add(packet('audio', 2, false, true));
    expect(cache.snapshot()).toHaveLength(1);
  });

  it('drops a GOP that outgrows the bound and resumes at the next keyframe', () => {
    const cache = new GopCache(100);
    cache.add(packet('video', 60, true));
    cache.add(packet('video', 60));
    expect(cache.snapshot()).toHaveLength(0);
    expect(cache.bytes).toBe(0);
    cache.add(packet('video', 60)); // not collecting until a keyframe
    expect(cache.snapshot()).toHaveLength(0);
    cache.add(packet('video', 30, true));
    expect(cache.snapshot()).toHaveLength(1);
  });

  it('caches nothing when disabled', () => {
    const cache = new GopCache(0);
    cache.add(packet('video', 1, true));
    expect(cache.snapshot()).toHaveLength(0);
  });
});
