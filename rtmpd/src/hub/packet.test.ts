import { describe, expect, it } from 'vitest';
import { KeyframeCopy } from './packet.ts';

const bytes = (length: number, fill: number) => Buffer.alloc(length, fill);

describe('KeyframeCopy', () => {
  it('copies each keyframe into the buffer the last one used while it fits, and grows it for a larger one', () => {
    const copies = new KeyframeCopy();
    const first = copies.of(bytes(12_000, 1));
    expect(first.equals(bytes(12_000, 1))).toBe(true);
    const second = copies.of(bytes(10_000, 2));
    expect(second.buffer).toBe(first.buffer);
    expect(second.equals(bytes(10_000, 2))).toBe(true);
    const larger = copies.of(bytes(13_000, 3));
    expect(larger.buffer).not.toBe(first.buffer);
    expect(larger.equals(bytes(13_000, 3))).toBe(true);
    expect(copies.of(bytes(11_000, 4)).buffer).toBe(larger.buffer);
  });

  it('takes a smaller buffer after a keyframe far larger than the next', () => {
    const copies = new KeyframeCopy();
    const large = copies.of(bytes(200_000, 1));
    const next = copies.of(bytes(10_000, 2));
    expect(next.buffer).not.toBe(large.buffer);
    expect(next.buffer.byteLength).toBe(10_000);
    expect(next.equals(bytes(10_000, 2))).toBe(true);
  });
});
