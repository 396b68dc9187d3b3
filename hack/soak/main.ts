// `make soak`: rtmpd under a mix of real and hostile clients for minutes,
// killed with SIGKILL and restarted now and then, and what it cost: errors,
// RSS slope, descriptors, frames received against real time. Outside CI (SOAK_ARGS="--minutes 10";
// --help lists the options and what fails the soak).
//   publishers  ffmpeg test patterns, each republishing after 20-60 s (churn)
//   players     ffmpeg reading each stream, counting the frames it decodes
//   stalled     RTMP players that stop reading their socket
//   hostile     connections sending garbage, or a byte every few seconds
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serverCloses } from '../bench/server-closes.ts';
import { serverEntry } from '../../rtmpd/test/support/processes.ts';
import { testPatternInputs } from '../../rtmpd/test/support/clips.ts';
import { RtmpClient } from '../../rtmpd/test/support/rtmp-client.ts';
import { freePort } from '../../e2e/lib/free-port.ts';

const USAGE = `usage: make soak SOAK_ARGS="[options]"   (node hack/soak/main.ts [options])

  --minutes <n>            how long the soak runs (5)
  --publishers <n>         ffmpeg publishers, each with an ffmpeg player (3)
  --kill-every <s>         seconds between SIGKILLs of rtmpd, each followed by a restart (90)
  --min-frames-ratio <r>   the least frames the players may decode per frame of real time they
                           played (0.9); players get the cached GOP on joining, so 1 or more means
                           none was lost, and a busy machine's encoders fall a little behind

It prints a JSON summary and exits 1 when rtmpd exited by itself, when it counted an internal error
(or its count could not be read), or when the frames ratio is below --min-frames-ratio (or no player
decoded a frame).`;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    publishers: { type: 'string', default: '3' },
    'kill-every': { type: 'string', default: '90' },
    'min-frames-ratio': { type: 'string', default: '0.9' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const minutes = Number(values.minutes);
const publisherCount = Number(values.publishers);
const killEveryMs = Number(values['kill-every']) * 1000;
const minFramesRatio = Number(values['min-frames-ratio']);
if (!(minFramesRatio >= 0)) {
  console.error(`--min-frames-ratio ${values['min-frames-ratio']} is not a number of 0 or more\n\n${USAGE}`);
  process.exit(2);
}
const FPS = 25;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const randomBetween = (min: number, max: number) => min + Math.random() * (max - min);

const [rtmpPort, httpPort] = [await freePort(), await freePort()];
const dataDir = mkdtempSync(join(tmpdir(), 'rtmpd-soak-'));
const rtmpUrl = (key: string) => `rtmp://127.0.0.1:${rtmpPort}/live/${key}`;
const children = new Set<ChildProcess>();
let stopping = false;

/** The running rtmpd, restarted after each SIGKILL. */
let server: ChildProcess | undefined;
let unexpectedExits = 0;
async function startServer(): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      serverEntry(),
      ...['--rtmp-bind', `127.0.0.1:${rtmpPort}`, '--http-bind', `127.0.0.1:${httpPort}`],
      ...['--storage-dir', join(dataDir, 'storage'), '--keyframe-dir', join(dataDir, 'keyframes'), '--log-level', 'warn'],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  server = child;
  child.once('exit', (code, signal) => {
    if (signal !== 'SIGKILL' && !stopping) {
      unexpectedExits++;
      console.log(`rtmpd exited by itself (${code ?? signal})`);
    }
  });
  for (let i = 0; i < 200; i++) {
    if ((await fetch(`http://127.0.0.1:${httpPort}/health`).catch(() => undefined))?.ok) return;
    await sleep(100);
  }
  throw new Error('rtmpd did not start');
}

/** Runs `start` again whenever what it started ends, until the soak stops. */
function keep(start: () => ChildProcess): void {
  const loop = () => {
    if (stopping) return;
    const child = start();
    children.add(child);
    child.once('exit', () => {
      children.delete(child);
      setTimeout(loop, 500);
    });
  };
  loop();
}

function publish(key: string): ChildProcess {
  const seconds = Math.round(randomBetween(20, 60));
  return spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', ...testPatternInputs('320x180'), '-t', String(seconds)].concat([
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-g',
      '50',
      '-c:a',
      'aac',
      '-f',
      'flv',
      rtmpUrl(key),
    ]),
    { stdio: 'ignore' },
  );
}

/** Frames players decoded, and the time they spent playing (for what they should have decoded). */
const frames = { received: 0, playingMs: 0 };
function play(key: string): ChildProcess {
  const child = spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', rtmpUrl(key), '-map', '0:v', '-f', 'null', '-progress', 'pipe:1', '-'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  let firstFrameAt: number | undefined;
  let last = 0;
  child.stdout!.on('data', (chunk: Buffer) => {
    for (const match of chunk.toString().matchAll(/^frame=(\d+)$/gm)) {
      const n = Number(match[1]);
      if (n > 0) firstFrameAt ??= performance.now();
      frames.received += n - last;
      last = n;
    }
  });
  child.once('exit', () => {
    if (firstFrameAt !== undefined) frames.playingMs += performance.now() - firstFrameAt;
  });
  return child;
}

/** Sockets of stalled players and hostile clients, closed at the end. */
const sockets = new Set<Socket>();
async function stalledPlayer(key: string): Promise<void> {
  const client = await RtmpClient.connect(rtmpUrl(key), { timeoutMs: 5000 }).catch(() => undefined);
  if (!client) return;
  client.socket.on('error', () => {});
  sockets.add(client.socket);
  client.socket.once('close', () => sockets.delete(client.socket));
  await client.play().catch(() => undefined);
  client.socket.pause(); // reads nothing more: its queue fills
}

function hostile(): void {
  const socket = connect(rtmpPort, '127.0.0.1');
  socket.on('error', () => {});
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  if (Math.random() < 0.5) {
    socket.write(Buffer.from(Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256))));
  } else {
    const timer = setInterval(() => socket.write(Buffer.from([3])), 3000);
    socket.once('close', () => clearInterval(timer));
  }
}

interface Sample {
  at: number;
  run: number;
  rssMiB: number;
  fds: number;
}
const samples: Sample[] = [];
let run = 0;
function sample(): void {
  const pid = server?.pid;
  if (pid === undefined || server?.exitCode !== null) return;
  try {
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
    samples.push({ at: performance.now(), run, rssMiB: rss, fds: readdirSync(`/proc/${pid}/fd`).length });
  } catch {
    // The process went away between the check and the read.
  }
}

/**
 * rtmpd's internal errors (bugs): the runs that were killed, summed (a restarted rtmpd counts from 0),
 * and the running one's count, read with the bench's reading of its closes (which a test checks
 * against a real rtmpd). Only scrapes of the run that is still running count, and how many succeeded
 * is reported: a soak that never read the count does not report 0.
 */
const internalErrors = { ofKilledRuns: 0, ofThisRun: 0, scrapes: 0 };
async function scrapeErrors(): Promise<void> {
  const scrapedRun = run;
  const closes = await serverCloses(new URL(`http://127.0.0.1:${httpPort}/metrics`)).catch(() => undefined);
  if (!closes || scrapedRun !== run) return;
  internalErrors.scrapes++;
  internalErrors.ofThisRun = Math.max(internalErrors.ofThisRun, closes.internal ?? 0);
}

/** Least-squares slope of RSS over time, in MiB per minute, for one run of the server (its first 30 s skipped). */
function rssSlope(points: Sample[]): number {
  const start = points[0]!.at + 30_000;
  const steady = points.filter((p) => p.at >= start);
  if (steady.length < 10) return Number.NaN;
  const xs = steady.map((p) => (p.at - start) / 60_000);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const mx = mean(xs);
  const my = mean(steady.map((p) => p.rssMiB));
  let num = 0;
  let den = 0;
  steady.forEach((p, i) => {
    num += (xs[i]! - mx) * (p.rssMiB - my);
    den += (xs[i]! - mx) ** 2;
  });
  return num / den;
}

console.log(`soak: ${minutes} min, ${publisherCount} publishers, SIGKILL every ${killEveryMs / 1000} s; rtmpd on ${rtmpPort}/${httpPort}`);
await startServer();
const startedAt = performance.now();
for (let i = 0; i < publisherCount; i++) {
  keep(() => publish(`soak${i}`));
  keep(() => play(`soak${i}`));
}
const sampler = setInterval(sample, 1000);
const errorsScraper = setInterval(() => void scrapeErrors(), 5000);
const churn = setInterval(() => {
  hostile();
  if (Math.random() < 0.3) void stalledPlayer(`soak${Math.floor(Math.random() * publisherCount)}`);
}, 1000);
let kills = 0;
const endAt = startedAt + minutes * 60_000;
let nextKill = startedAt + killEveryMs;
while (performance.now() < endAt) {
  await sleep(1000);
  if (performance.now() >= nextKill && performance.now() < endAt - 30_000) {
    await scrapeErrors();
    server?.kill('SIGKILL');
    internalErrors.ofKilledRuns += internalErrors.ofThisRun;
    internalErrors.ofThisRun = 0;
    kills++;
    run++;
    await startServer();
    nextKill = performance.now() + killEveryMs;
  }
}
await scrapeErrors();
stopping = true;
clearInterval(sampler);
clearInterval(errorsScraper);
clearInterval(churn);
for (const child of children) child.kill('SIGKILL');
for (const socket of sockets) socket.destroy();
server?.kill('SIGTERM');
await sleep(2000);
rmSync(dataDir, { recursive: true, force: true });

const runs = [...new Set(samples.map((s) => s.run))].map((r) => samples.filter((s) => s.run === r));
const slopes = runs.map(rssSlope).filter((s) => !Number.isNaN(s));
const fds = samples.map((s) => s.fds);
const expected = (frames.playingMs / 1000) * FPS;
// NaN when no player decoded a frame, which fails the soak like a ratio below the bound.
const framesRatio = frames.received / expected;
const internalErrorCount = internalErrors.scrapes ? internalErrors.ofKilledRuns + internalErrors.ofThisRun : undefined;
console.log(
  JSON.stringify(
    {
      minutes,
      kills,
      unexpectedExits,
      internalErrors: internalErrorCount ?? 'not read: no scrape of /metrics succeeded',
      rssMiB: { first: samples[0]?.rssMiB, max: Math.max(...samples.map((s) => s.rssMiB)), last: samples.at(-1)?.rssMiB },
      rssSlopeMiBPerMinute: slopes.map((s) => Number(s.toFixed(2))),
      fds: { min: Math.min(...fds), max: Math.max(...fds), last: fds.at(-1) },
      // Players get the cached GOP when they join, so a ratio of 1 or more means none was lost.
      frames: {
        received: frames.received,
        realTime: Math.round(expected),
        ratio: Number(framesRatio.toFixed(3)),
        minRatio: minFramesRatio,
      },
    },
    null,
    2,
  ),
);
// A count not read fails the soak too: it did not check what it reports.
const failures = [
  unexpectedExits > 0 && `rtmpd exited by itself ${unexpectedExits} times`,
  internalErrorCount !== 0 && `internal errors: ${internalErrorCount ?? 'not read'}`,
  !(framesRatio >= minFramesRatio) && `frames ratio ${framesRatio.toFixed(3)} is below --min-frames-ratio ${minFramesRatio}`,
].filter((failure) => failure !== false);
for (const failure of failures) console.log(`soak failed: ${failure}`);
process.exit(failures.length > 0 ? 1 : 0);
