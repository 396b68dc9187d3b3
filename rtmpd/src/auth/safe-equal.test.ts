import { describe, expect, it } from 'vitest';
import { matchesAny, safeEqual } from './safe-equal.ts';

/**
 * Typical time of `compare(secret, guess)` for a guess that differs in its
 * first byte and for one that differs only in its last, in alternation so
 * both see the same machine. A comparison that stops at the first
 * difference takes much longer on the second.
 */
function timing(compare: (a: string, b: string) => boolean): { early: number; late: number } {
  const secret = 'k'.repeat(1 << 16);
  const early = `x${secret.slice(1)}`;
  const late = `${secret.slice(0, -1)}x`;
  for (let i = 0; i < 20; i++) compare(secret, i % 2 ? early : late); // warm up the JIT first
  const samples = { early: [] as number[], late: [] as number[] };
  for (let i = 0; i < 80; i++) {
    for (const [name, guess] of [
      ['early', early],
      ['late', late],
    ] as const) {
      const start = process.hrtime.bigint();
      for (let j = 0; j < 4; j++) compare(secret, guess);
      samples[name].push(Number(process.hrtime.bigint() - start));
    }
  }
  // A low percentile: what the comparison costs when no neighbour on the machine interferes.
  const low = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 3]!;
  return { early: low(samples.early), late: low(samples.late) };
}

describe('safeEqual', () => {
  it('compares values', () => {
    expect(safeEqual('s3cr3t', 's3cr3t')).toBe(true);
    expect(safeEqual('s3cr3t', 's3cr3T')).toBe(false);
    expect(safeEqual('s3cr3t', 's3cr3t-longer')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
    expect(matchesAny('b', ['a', 'b', 'c'])).toBe(true);
    expect(matchesAny('d', ['a', 'b', 'c'])).toBe(false);
    expect(matchesAny('d', [])).toBe(false);
  });

  it('takes as long for a guess wrong at its first byte as for one wrong at its last', () => {
    // The measurement can see a leak: a comparison that stops at the first difference shows one.
    const leaky = (a: string, b: string) => {
      if (a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false;
      return true;
    };
    const naive = timing(leaky);
    expect(naive.late / naive.early).toBeGreaterThan(3);
    const safe = timing(safeEqual);
    expect(safe.late / safe.early).toBeGreaterThan(0.67);
    expect(safe.late / safe.early).toBeLessThan(1.5);
  });
});
