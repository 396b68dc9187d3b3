// Malformed-input checks for the parsers of network data: whatever bytes they
// get, they return or throw MediaParseError, never anything else.
import { expect } from 'vitest';
import { MediaParseError } from '../../src/codec/errors.ts';
import { prng, randomInt } from './random.ts';

/** Runs `parse`; passes when it returns or throws MediaParseError, fails on any other throw. */
export function expectResultOrMediaParseError(parse: () => unknown, label: string): void {
  try {
    parse();
  } catch (err) {
    if (!(err instanceof MediaParseError)) {
      expect.fail(`${label}: threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    }
  }
}

/** Every strict prefix of `data` must produce a result or a MediaParseError. */
export function checkPrefixes(data: Buffer, parse: (b: Buffer) => unknown): void {
  for (let len = 0; len < data.length; len++) {
    // Copy so a read past the prefix cannot silently see the original bytes.
    const prefix = Buffer.from(data.subarray(0, len));
    expectResultOrMediaParseError(() => parse(prefix), `prefix ${len}/${data.length}`);
  }
}

/** `iterations` randomly corrupted copies (1-8 bytes overwritten, sometimes truncated). */
export function checkCorruptions(data: Buffer, parse: (b: Buffer) => unknown, iterations = 3000, seed = 0x5eed): void {
  const rand = prng(seed);
  for (let i = 0; i < iterations; i++) {
    const copy = Buffer.from(data);
    const edits = 1 + randomInt(rand, 8);
    for (let e = 0; e < edits && copy.length > 0; e++) copy[randomInt(rand, copy.length)] = randomInt(rand, 256);
    const input = randomInt(rand, 4) === 0 ? copy.subarray(0, randomInt(rand, copy.length + 1)) : copy;
    expectResultOrMediaParseError(() => parse(input), `corruption #${i}`);
  }
}
