// Where the fuzzers start: the captured client sessions, and the inputs in
// testdata/ (kept as regression inputs, as MediaMTX keeps testdata/fuzz):
// every input they found before and the hand-made hostile ones (hostile.ts).
// testdata/ holds the intake's inputs; testdata/tcp/ whole connections'
// bytes for a real rtmpd (`<behaviour>-<hash>.bin`, network.ts) and
// testdata/http/ requests (http.ts's FuzzRequest as JSON).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FuzzRequest } from './http.ts';
import type { Behaviour } from './network.ts';
import { messagesOf, type WireMessage } from './wire-mutations.ts';

const CAPTURES = join(import.meta.dirname, '../../src/rtmp/wire/testdata');
export const REGRESSIONS_DIR = join(import.meta.dirname, 'testdata');
export const TCP_REGRESSIONS_DIR = join(REGRESSIONS_DIR, 'tcp');
export const HTTP_REGRESSIONS_DIR = join(REGRESSIONS_DIR, 'http');

const read = (dir: string, extension: string) =>
  (existsSync(dir) ? readdirSync(dir) : [])
    .filter((f) => f.endsWith(extension))
    .sort()
    .map((f) => ({ name: f, bytes: readFileSync(join(dir, f)) }));

/** The captured sessions of real clients (ffmpeg publishing, rtmpdump playing), by file name. */
export const captures = (): { name: string; bytes: Buffer }[] => read(CAPTURES, '.bin');

/** The inputs found by earlier runs and the hand-made hostile ones, by file name. */
export const regressionInputs = (): { name: string; bytes: Buffer }[] => read(REGRESSIONS_DIR, '.bin');

export const fuzzSeeds = (): Buffer[] => [...captures(), ...regressionInputs()].map((f) => f.bytes);

/** What the network fuzzer mutates: the captures as messages. */
export const tcpSessions = (): WireMessage[][] => captures().map((c) => messagesOf(c.bytes));

/** The connections the network fuzzer found a problem with, and what each client did. */
export const tcpRegressions = (): { name: string; bytes: Buffer; behaviour: Behaviour }[] =>
  read(TCP_REGRESSIONS_DIR, '.bin').map((f) => ({ ...f, behaviour: f.name.slice(0, f.name.indexOf('-')) as Behaviour }));

/** The requests the HTTP fuzzer found a problem with. */
export const httpRegressions = (): { name: string; request: FuzzRequest }[] =>
  read(HTTP_REGRESSIONS_DIR, '.json').map((f) => ({ name: f.name, request: JSON.parse(f.bytes.toString()) as FuzzRequest }));
