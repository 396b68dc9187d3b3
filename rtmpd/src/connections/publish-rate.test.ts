import { describe, expect, it } from 'vitest';
import { PublishRate } from './publish-rate.ts';

describe('PublishRate', () => {
  it('allows a burst of the minute’s starts, then one per 60/perMinute seconds, per address', () => {
    const rate = new PublishRate();
    for (let i = 0; i < 3; i++) expect(rate.take('a', 3, 0)).toBe(true);
    expect(rate.take('a', 3, 0)).toBe(false);
    expect(rate.take('b', 3, 0)).toBe(true);
    expect(rate.take('a', 3, 19_999)).toBe(false);
    expect(rate.take('a', 3, 20_000)).toBe(true);
    expect(rate.take('a', 3, 20_001)).toBe(false);
  });

  it('has no limit at 0', () => {
    const rate = new PublishRate();
    for (let i = 0; i < 1000; i++) expect(rate.take('a', 0, 0)).toBe(true);
  });

  it('forgets an address once its bucket is full again', () => {
    const rate = new PublishRate();
    rate.take('a', 2, 0);
    rate.take('a', 2, 0);
    rate.prune(2, 59_999);
    expect(rate.take('a', 2, 59_999)).toBe(true);
    expect(rate.take('a', 2, 59_999)).toBe(false);
    rate.prune(2, 200_000);
    // A full bucket and a forgotten one allow the same starts: only the map, which prune bounds, tells them apart.
    expect(rate['buckets'].size).toBe(0);
    // A fresh, full bucket: two starts at once.
    expect(rate.take('a', 2, 200_000)).toBe(true);
    expect(rate.take('a', 2, 200_000)).toBe(true);
  });
});
