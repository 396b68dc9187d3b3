import { describe, expect, it } from 'vitest';
import { peakSegmentBitRate } from '../../test/support/m3u8.ts';
import { SegmentRates } from './bandwidth.ts';

/** [seconds, bits per second] of each segment, in order. */
type Segments = [number, number][];

function ratesOf(segments: Segments, target: number): SegmentRates {
  const rates = new SegmentRates();
  for (const [seconds, rate] of segments) rates.add(seconds * rate, seconds, target);
  return rates;
}

describe('SegmentRates', () => {
  it('knows nothing before the first segment', () => {
    expect(new SegmentRates().bandwidth).toBeUndefined();
  });

  it('does not take one short dense segment (the last before an unpublish) for the peak', () => {
    const bandwidth = ratesOf(
      [
        [2, 1e6],
        [2, 1e6],
        [2, 1e6],
        [0.2, 3e6],
      ],
      2,
    ).bandwidth!;
    // The densest set of at least 2 s is the short segment with the one before it.
    expect(bandwidth.peak).toBeCloseTo((2e6 + 0.6e6) / 2.2, 6);
    expect(bandwidth.average).toBeCloseTo((6e6 + 0.6e6) / 6.2, 6);
  });

  it('finds a peak that spans segments cut early by forced keyframes', () => {
    // Four dense half-second segments in a row last a target duration: together they are the peak.
    const segments: Segments = [
      [2, 1e6],
      [0.5, 4e6],
      [0.5, 4e6],
      [0.5, 4e6],
      [0.5, 4e6],
      [2, 1e6],
    ];
    expect(ratesOf(segments, 2).bandwidth!.peak).toBeCloseTo(4e6, 6);
  });

  it('keeps a peak measured before the target grew: an upper bound, where forgetting it could understate', () => {
    const rates = new SegmentRates();
    rates.add(1 * 3e6, 1, 1);
    rates.add(1.6 * 1e6, 1.6, 2);
    expect(rates.bandwidth!.peak).toBe(3e6);
  });

  it('gives the average as the peak while all segments together last less than the target', () => {
    expect(
      ratesOf(
        [
          [0.4, 5e6],
          [0.6, 1e6],
        ],
        2,
      ).bandwidth,
    ).toEqual({ peak: 2.6e6, average: 2.6e6 });
  });

  it('agrees with the definition on made-up streams of any shape', () => {
    // A fixed generator, so a failure repeats: segment lengths 0.1-2.9 s under a 2-3 s target, rates over two decades.
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let stream = 0; stream < 200; stream++) {
      const target = 2 + Math.floor(random() * 2);
      const segments: Segments = Array.from({ length: 1 + Math.floor(random() * 40) }, () => [
        0.1 + random() * (target + 0.4),
        1e5 * 10 ** (2 * random()),
      ]);
      const expected = peakSegmentBitRate(segments.map(([seconds, rate]) => ({ bits: seconds * rate, seconds, targetSeconds: target })));
      const { peak } = ratesOf(segments, target).bandwidth!;
      if (expected > 0) expect(peak / expected).toBeCloseTo(1, 9);
    }
  });
});
