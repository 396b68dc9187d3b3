// The fuzzer in the suite: every input it ever found is replayed, and a short
// run from a fixed seed must find nothing new. `make fuzz` runs it for longer.
import { describe, expect, it } from 'vitest';
import { RtmpProtocolError } from '../../src/rtmp/wire/errors.ts';
import { fuzz } from './fuzzer.ts';
import { captures, fuzzSeeds, regressionInputs } from './seeds.ts';
import { expectedError, feedSession } from './target.ts';

describe('RTMP intake fuzzing', () => {
  it('replays the captures and every checked-in input without an unexpected error', () => {
    const inputs = [...captures(), ...regressionInputs()];
    expect(captures().length).toBeGreaterThan(0);
    expect(regressionInputs().length).toBeGreaterThan(0);
    for (const { name, bytes } of inputs) {
      // refused-<reason>.bin (testdata/hostile.ts) must reach the check that refuses it.
      const refusal = /^refused-(\w+)\.bin$/.exec(name)?.[1];
      try {
        feedSession(bytes);
      } catch (err) {
        expect(expectedError(err), `${name}: ${String(err)}`).toBe(true);
        if (refusal) expect(err, name).toBeInstanceOf(RtmpProtocolError);
        if (refusal) expect((err as RtmpProtocolError).reason, name).toBe(refusal);
        continue;
      }
      expect(refusal, `${name} was not refused`).toBeUndefined();
    }
  });

  it('reports an input that throws anything but a protocol or media error as a finding', async () => {
    const result = await fuzz({
      target: (input) => {
        if (input.includes(0xab)) throw new TypeError('planted');
      },
      seeds: [Buffer.alloc(64)],
      maxRuns: 500,
      seed: 3,
      coverageOf: '/rtmpd/test/fuzz/',
    });
    expect(result.findings.length).toBeGreaterThan(0);
    expect(result.findings.every((f) => f.input.includes(0xab) && f.error instanceof TypeError)).toBe(true);
  });

  it('finds nothing in a short coverage-guided run from the captures', async () => {
    const result = await fuzz({
      target: feedSession,
      seeds: fuzzSeeds(),
      maxRuns: 2000,
      deadline: performance.now() + 20_000,
      seed: 1,
      coverageOf: '/rtmpd/src/',
    });
    expect(result.findings.map((f) => `${f.name}: ${String(f.error)}`)).toEqual([]);
    // Coverage guidance works: mutated inputs reached code the captures did not.
    expect(result.corpus).toBeGreaterThan(fuzzSeeds().length);
  });
});
