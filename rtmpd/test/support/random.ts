// Seeded randomness, so the tests that cut and corrupt input repeat exactly.

/** A PRNG (mulberry32) returning numbers in [0, 1); the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export const randomInt = (random: () => number, n: number): number => Math.floor(random() * n);

/** Splits `data` into pieces of random sizes between 1 and `max`. */
export function randomPieces(data: Buffer, random: () => number, max: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let pos = 0; pos < data.length;) {
    const n = 1 + randomInt(random, max);
    pieces.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return pieces;
}
