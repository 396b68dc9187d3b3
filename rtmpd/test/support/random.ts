// Shared by the rtmp tests: a seeded PRNG, so corruption tests are repeatable.
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

/** Splits `data` into pieces of random sizes between 1 and `max`. */
export function randomPieces(data: Buffer, random: () => number, max: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let pos = 0; pos < data.length;) {
    const n = 1 + Math.floor(random() * max);
    pieces.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return pieces;
}
