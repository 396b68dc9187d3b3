// `make fuzz`: runs the fuzzers for a while (FUZZ_SECONDS each, default 300)
// from a seed (FUZZ_SEED, a new one by default) and writes what they find to
// rtmpd/test/fuzz/testdata/ (check them in: fuzz.test.ts replays them all).
// --target: `intake` (the RTMP intake in-process), `tcp` and `http` (a real
// rtmpd over TCP and HTTP, then checked for exits, errors, RSS, and that it
// still serves), or `all`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { serverEntry, startServer, stopAll, tempDir, type RunningServer } from '../support/processes.ts';
import { fuzz } from './fuzzer.ts';
import { fuzzHttp, routesOf, type OpenApi } from './http.ts';
import { checkStillServes, CLOSE_WITHIN_MS, FUZZ_SERVER_FLAGS, fuzzTcp, rssBoundMiB, rssMiB, serverProblems } from './network.ts';
import { fuzzSeeds, HTTP_REGRESSIONS_DIR, REGRESSIONS_DIR, TCP_REGRESSIONS_DIR, tcpSessions } from './seeds.ts';
import { feedSession } from './target.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    target: { type: 'string', default: 'all' },
    concurrency: { type: 'string', default: '16' },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
const concurrency = Number(values.concurrency);
const targets = values.target === 'all' ? ['intake', 'tcp', 'http'] : [values.target];
const deadline = () => performance.now() + seconds * 1000;
let failed = false;

const describeError = (error: unknown) => (error instanceof Error ? (error.stack ?? error.message) : String(error));

async function fuzzIntake(): Promise<void> {
  console.log(`fuzzing the RTMP intake in-process for ${seconds} s (seed ${seed})`);
  const result = await fuzz({
    target: feedSession,
    seeds: fuzzSeeds(),
    maxRuns: Number.MAX_SAFE_INTEGER,
    deadline: deadline(),
    seed,
    coverageOf: '/rtmpd/src/',
  });
  for (const finding of result.findings) {
    const file = join(REGRESSIONS_DIR, `${finding.name}.bin`);
    writeFileSync(file, finding.input);
    console.log(`finding: ${file}: ${describeError(finding.error)}`);
  }
  failed ||= result.findings.length > 0;
  console.log(
    `${result.runs} runs, ${result.corpus} inputs in the corpus, ${result.blocks} blocks covered, ${result.findings.length} findings`,
  );
}

async function fuzzTcpPort(server: RunningServer): Promise<void> {
  console.log(`fuzzing rtmpd's RTMP port for ${seconds} s, ${concurrency} clients at once (seed ${seed})`);
  const result = await fuzzTcp({
    port: server.rtmpPort,
    sessions: tcpSessions(),
    seed,
    maxClients: Number.MAX_SAFE_INTEGER,
    deadline: deadline(),
    concurrency,
    closeWithinMs: CLOSE_WITHIN_MS,
    server,
  });
  mkdirSync(TCP_REGRESSIONS_DIR, { recursive: true });
  for (const finding of result.findings) {
    const file = join(TCP_REGRESSIONS_DIR, `${finding.behaviour}-${finding.name}.bin`);
    writeFileSync(file, finding.input);
    console.log(`finding: ${file}: ${finding.problem}`);
  }
  failed ||= result.findings.length > 0;
  console.log(
    `${result.clients} clients, ${result.silent} went silent, the slowest closed after ${result.slowestCloseMs.toFixed(0)} ms, ${result.findings.length} findings`,
  );
}

async function fuzzHttpPort(server: RunningServer, token: string): Promise<void> {
  console.log(`fuzzing rtmpd's HTTP port for ${seconds} s (seed ${seed})`);
  const openapi = (await (await fetch(server.httpUrl('/api/v1/openapi.json'))).json()) as OpenApi;
  const result = await fuzzHttp({
    port: server.httpPort,
    routes: routesOf(openapi),
    token,
    seed,
    maxRequests: Number.MAX_SAFE_INTEGER,
    deadline: deadline(),
    concurrency: 8,
  });
  mkdirSync(HTTP_REGRESSIONS_DIR, { recursive: true });
  for (const finding of result.findings) {
    const file = join(HTTP_REGRESSIONS_DIR, `${finding.name}.json`);
    writeFileSync(file, `${JSON.stringify(finding.request, null, 2)}\n`);
    console.log(`finding: ${file}: ${finding.request.method} ${finding.request.path.slice(0, 200)}: ${finding.problem}`);
  }
  failed ||= result.findings.length > 0;
  console.log(`${result.requests} requests, answers by status ${JSON.stringify(result.statuses)}, ${result.findings.length} findings`);
}

/** The TCP and HTTP fuzzers, against one rtmpd that is checked after both. */
async function fuzzServer(): Promise<void> {
  const token = 'fuzz-api-token-of-the-suite';
  const tokens = join(await tempDir('rtmpd-fuzz-'), 'api.tokens');
  await writeFile(tokens, `${token}\n`);
  // The bundle, or the TypeScript sources when a source is newer: their RSS differs by about two.
  const entry = relative(process.cwd(), serverEntry());
  const server = await startServer([...FUZZ_SERVER_FLAGS, '--api-token-file', tokens]);
  try {
    const ready = rssMiB(server.child.pid!).now;
    if (targets.includes('tcp')) await fuzzTcpPort(server);
    if (targets.includes('http')) await fuzzHttpPort(server, token);
    const bound = rssBoundMiB(ready, concurrency);
    const problems = serverProblems(server, bound);
    for (const problem of problems) console.log(`finding: ${problem}`);
    if (problems.length === 0) await checkStillServes(server);
    failed ||= problems.length > 0;
    const rss = rssMiB(server.child.pid!);
    console.log(
      `rtmpd (${entry}): RSS ${ready.toFixed(0)} MiB when ready, peak ${rss.peak.toFixed(0)} MiB (bound ${bound.toFixed(0)}), ${rss.now.toFixed(0)} MiB now`,
    );
  } finally {
    await server.stop();
    stopAll();
  }
}

try {
  if (targets.includes('intake')) await fuzzIntake();
  if (targets.includes('tcp') || targets.includes('http')) await fuzzServer();
} catch (err) {
  console.log(`finding: ${describeError(err)}`);
  failed = true;
}
process.exit(failed ? 1 : 0);
