// Where the fuzzer starts: the captured client sessions, and every input it
// found before (kept as regression inputs, as MediaMTX keeps testdata/fuzz).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CAPTURES = join(import.meta.dirname, '../../src/rtmp/wire/testdata');
export const REGRESSIONS_DIR = join(import.meta.dirname, 'testdata');

const read = (dir: string, extension: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(extension))
    .sort()
    .map((f) => ({ name: f, bytes: readFileSync(join(dir, f)) }));

/** The inputs found by earlier runs, by file name. */
export const regressionInputs = (): { name: string; bytes: Buffer }[] => read(REGRESSIONS_DIR, '.bin');

export const fuzzSeeds = (): Buffer[] => [...read(CAPTURES, '.bin'), ...regressionInputs()].map((f) => f.bytes);
