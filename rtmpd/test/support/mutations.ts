// Inputs for property tests and the fuzzer: real captures, changed the way a
// broken encoder or an attacker would (bytes overwritten, inserted, removed,
// the end cut off), so that the parsers are driven past their first checks.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { FlvDemuxer } from '../../src/flv/demux.ts';
import type { MediaKind } from '../../src/flv/media-kind.ts';

const FLV_TESTDATA = join(import.meta.dirname, '../../src/flv/testdata');

/** Every tag of the FLV fixtures (H.264, HEVC and AV1 video; AAC, MP3 and Opus audio; metadata). */
export function fixtureTags(): { kind: MediaKind; body: Buffer }[] {
  const tags: { kind: MediaKind; body: Buffer }[] = [];
  for (const name of readdirSync(FLV_TESTDATA)
    .filter((f) => f.endsWith('.flv'))
    .sort()) {
    for (const tag of new FlvDemuxer().push(readFileSync(join(FLV_TESTDATA, name))))
      tags.push({ kind: tag.kind, body: Buffer.from(tag.body) });
  }
  return tags;
}

/** One edit of a byte string; positions are fractions of its length, so they shrink well. */
type Edit = { op: 'set' | 'insert'; at: number; byte: number } | { op: 'remove' | 'truncate'; at: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({
    op: fc.constantFrom('set' as const, 'insert' as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ op: fc.constantFrom('remove' as const, 'truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
);

/** `seed` with `edits` applied (a new buffer when anything changed). */
export function mutate(seed: Buffer, edits: readonly Edit[]): Buffer {
  let bytes = seed;
  for (const e of edits) {
    const at = Math.min(bytes.length, Math.floor(e.at * (bytes.length + 1)));
    if (e.op === 'set' && at < bytes.length) {
      bytes = Buffer.from(bytes);
      bytes[at] = e.byte;
    } else if (e.op === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([e.byte]), bytes.subarray(at)]);
    else if (e.op === 'remove') bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
    else if (e.op === 'truncate') bytes = bytes.subarray(0, at);
  }
  return bytes;
}

const OPS = [...Array<'set'>(8).fill('set'), 'insert', 'insert', 'remove', 'remove', 'truncate'] as const;

/** `count` edits drawn from `random` (a prng), for the fuzzer; mostly overwritten bytes, rarely a cut end. */
export function randomEdits(random: () => number, count: number): Edit[] {
  return Array.from({ length: count }, () => {
    const op = OPS[Math.floor(random() * OPS.length)]!;
    const at = random();
    return op === 'set' || op === 'insert' ? { op, at, byte: Math.floor(random() * 256) } : { op, at };
  });
}

/** One of `seeds` with up to `maxEdits` edits, or (one time in ten) random bytes. */
export function mutated(seeds: readonly Buffer[], maxEdits = 6): fc.Arbitrary<Buffer> {
  return fc.oneof(
    {
      weight: 9,
      arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { maxLength: maxEdits })).map(([seed, edits]) => mutate(seed, edits)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  );
}
