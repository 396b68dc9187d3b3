import { describe, expect, it } from 'vitest';
import { Samples } from './stats.ts';

describe('Samples', () => {
  it('summarises samples past its first 65,536 (where it grows), in any order', () => {
    const samples = new Samples();
    const n = 200_000;
    // 1..n in a scrambled order (a multiplier coprime to n), so the summary must sort numerically.
    for (let i = 0; i < n; i++) samples.push(((i * 7_919) % n) + 1);
    expect(samples.summary()).toEqual({ count: n, meanMs: (n + 1) / 2, p50Ms: 100_001, p95Ms: 190_001, p99Ms: 198_001, maxMs: n });
  });

  it('carries its samples to another Samples, as the load generator processes send them', () => {
    const from = new Samples();
    for (const v of [3, 1, 2]) from.push(v);
    const to = new Samples();
    to.push(10);
    to.pushAll(from.values());
    expect(to.summary()).toMatchObject({ count: 4, meanMs: 4, p50Ms: 3, maxMs: 10 });
  });

  it('says NaN for no samples, not 0', () => {
    expect(new Samples().summary()).toEqual({ count: 0, meanMs: NaN, p50Ms: NaN, p95Ms: NaN, p99Ms: NaN, maxMs: NaN });
  });
});
