// The fuzzers in the suite: every input they ever found is replayed, and a
// short run of each from a fixed seed must find nothing new: the RTMP intake
// in-process, then a real rtmpd over TCP and HTTP, which must not exit, log
// an error or pass its memory bound, and must still serve ffmpeg and ffprobe
// afterwards. `make fuzz` runs them for longer.
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtmpProtocolError } from '../../src/rtmp/wire/errors.ts';
import { startServer, stopAll, tempDir, type RunningServer } from '../support/processes.ts';
import { fuzz } from './fuzzer.ts';
import { fuzzHttp, problemOf, routesOf, send, type OpenApi } from './http.ts';
import {
  checkStillServes,
  CLOSE_WITHIN_MS,
  FUZZ_SERVER_FLAGS,
  fuzzTcp,
  rssBoundMiB,
  rssMiB,
  sendAs,
  serverProblems,
  untilHandled,
} from './network.ts';
import { captures, fuzzSeeds, httpRegressions, regressionInputs, tcpRegressions, tcpSessions } from './seeds.ts';
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

describe('the network fuzzers', () => {
  it('report a connection left open after its client went silent', async () => {
    const neverCloses = createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => neverCloses.listen(0, '127.0.0.1', resolve));
    try {
      const port = (neverCloses.address() as AddressInfo).port;
      const result = await fuzzTcp({ port, sessions: tcpSessions(), seed: 5, maxClients: 12, concurrency: 12, closeWithinMs: 300 });
      expect(result.silent).toBeGreaterThan(0);
      expect(result.findings).toHaveLength(result.silent);
    } finally {
      neverCloses.close();
    }
  });

  it('report a 5xx, and a 4xx without the JSON error body', () => {
    const get = { method: 'GET', path: '/', headers: {} };
    const json = 'application/json; charset=utf-8';
    const error = (code: string) => Buffer.from(JSON.stringify({ error: { code, message: 'm' } }));
    expect(problemOf(get, { status: 500, contentType: json, body: error('internal_error') })).toMatch(/answered 500/);
    expect(problemOf(get, { status: 404, contentType: 'text/html', body: Buffer.from('<h1>') })).toMatch(/not JSON/);
    expect(problemOf(get, { status: 400, contentType: json, body: Buffer.from('{}') })).toMatch(/without the error body/);
    expect(problemOf(get, { status: 404, contentType: json, body: error('not_found') })).toBeUndefined();
    // A scanner's method is no server error: rtmpd answers it 405 (or 404), never 501.
    expect(problemOf({ ...get, method: 'PROPFIND' }, { status: 501, contentType: json, body: error('not_implemented') })).toMatch(
      /answered 501/,
    );
  });
});

describe('a real rtmpd under fuzzed clients', () => {
  const token = 'fuzz-api-token-of-the-suite';
  let server: RunningServer;
  let readyMiB: number;

  beforeAll(async () => {
    const tokens = join(await tempDir('rtmpd-fuzz-'), 'api.tokens');
    await writeFile(tokens, `${token}\n`);
    server = await startServer([...FUZZ_SERVER_FLAGS, '--api-token-file', tokens]);
    readyMiB = rssMiB(server.child.pid!).now;
  });

  afterAll(async () => {
    await server?.stop();
    stopAll();
  });

  it('replays the connections and requests found before: no error, no exit, silent ones closed in time, answers as they must be', async () => {
    for (const { name, bytes, behaviour } of tcpRegressions()) {
      const closedAfterMs = await sendAs(server.rtmpPort, bytes, [], behaviour, CLOSE_WITHIN_MS);
      if (behaviour !== 'hangup') expect(closedAfterMs, name).toBeDefined();
    }
    for (const { name, request } of httpRegressions()) {
      const answer = await send(server.httpPort, request);
      if (answer) expect(problemOf(request, answer), name).toBeUndefined();
    }
    await untilHandled(server);
    expect(serverProblems(server, Infinity)).toEqual([]);
  });

  it('closes every silent connection in time in a short run over TCP from a fixed seed', async () => {
    const result = await fuzzTcp({
      port: server.rtmpPort,
      sessions: tcpSessions(),
      seed: 1,
      maxClients: 3000,
      deadline: performance.now() + 15_000,
      concurrency: 16,
      closeWithinMs: CLOSE_WITHIN_MS,
      server,
    });
    expect(result.findings.map((f) => `${f.name} (${f.behaviour}): ${f.problem}`)).toEqual([]);
    expect(result.silent).toBeGreaterThan(0);
  });

  it('answers no 5xx and every 4xx in JSON in a short run over HTTP from a fixed seed', async () => {
    const openapi = (await (await fetch(server.httpUrl('/api/v1/openapi.json'))).json()) as OpenApi;
    const result = await fuzzHttp({
      port: server.httpPort,
      routes: routesOf(openapi),
      token,
      seed: 1,
      maxRequests: 3000,
      deadline: performance.now() + 8000,
      concurrency: 8,
    });
    expect(result.findings.map((f) => `${f.request.method} ${f.request.path.slice(0, 200)}: ${f.problem}`)).toEqual([]);
    expect(result.statuses[200]).toBeGreaterThan(0);
  });

  it('has not exited, logged an error or passed its memory bound, and still serves ffmpeg and ffprobe', async () => {
    expect(serverProblems(server, rssBoundMiB(readyMiB, 16))).toEqual([]);
    await checkStillServes(server);
  });
});
