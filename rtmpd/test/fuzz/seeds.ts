// Where the fuzzer starts: the captured client sessions, and the inputs in
// testdata/ (kept as regression inputs, as MediaMTX keeps testdata/fuzz):
// every input it found before and the hand-made hostile ones (hostile.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CAPTURES = join(import.meta.dirname, '../../src/rtmp/wire/testdata');
export const REGRESSIONS_DIR = join(import.meta.dirname, 'testdata');

const read = (dir: string, extension: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(extension))
    .sort()
    .map((f) => ({ name: f, bytes: readFileSync(join(dir, f)) }));

/** The captured sessions of real clients (ffmpeg publishing, rtmpdump playing), by file name. */
export const captures = (): { name: string; bytes: Buffer }[] => read(CAPTURES, '.bin');

/** The inputs found by earlier runs and the hand-made hostile ones, by file name. */
export const regressionInputs = (): { name: string; bytes: Buffer }[] => read(REGRESSIONS_DIR, '.bin');

export const fuzzSeeds = (): Buffer[] => [...captures(), ...regressionInputs()].map((f) => f.bytes);
