import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.ts';

describe('BufferPool', () => {
  it('hands back a given buffer of the size asked for, and a new one otherwise', () => {
    const pool = new BufferPool(1024);
    const a = pool.take(256);
    expect(a.length).toBe(256);
    pool.give(a);
    expect(pool.take(512)).not.toBe(a);
    expect(pool.take(256)).toBe(a);
    expect(pool.take(256)).not.toBe(a);
  });

  it('keeps no more spare bytes than its bound', () => {
    const pool = new BufferPool(1024);
    const buffers = [pool.take(512), pool.take(512), pool.take(512)];
    for (const b of buffers) pool.give(b);
    const again = [pool.take(512), pool.take(512), pool.take(512)];
    expect(again.filter((b) => buffers.includes(b))).toHaveLength(2);
  });
});
