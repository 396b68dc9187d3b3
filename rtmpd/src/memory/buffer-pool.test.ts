import { describe, expect, it, vi } from 'vitest';
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

describe('BufferPool.trim', () => {
  it('lets go of the spare bytes no take() needed since the last trim, and keeps the rest', () => {
    const pool = new BufferPool(1 << 20, 60_000);
    const buffers = Array.from({ length: 8 }, () => pool.take(1024));
    for (const b of buffers) pool.give(b);
    pool.trim(); // the first interval: the load has not had its turn yet
    expect(pool.bytes).toBe(8 * 1024);
    // The load takes at most 3 at once: 5 stay unused the whole interval.
    for (let round = 0; round < 4; round++) {
      const out = [pool.take(1024), pool.take(1024), pool.take(1024)];
      for (const b of out) pool.give(b);
    }
    pool.trim();
    expect(pool.bytes).toBe(3 * 1024);
    // With no load at all, the next trim empties the pool.
    pool.trim();
    expect(pool.bytes).toBe(0);
  });

  it('trims by itself every interval while it holds spare buffers', async () => {
    const pool = new BufferPool(1 << 20, 20);
    pool.give(pool.take(4096));
    await vi.waitFor(() => expect(pool.bytes).toBe(0), { timeout: 2000, interval: 10 });
  });
});
