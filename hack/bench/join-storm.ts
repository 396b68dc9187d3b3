// A join storm against one rtmpd: a publisher (ffmpeg replaying a bench
// fixture in real time), then N HTTP-FLV players joining its stream at once
// from a process of their own, while GET /health is probed as the kubelet
// does, on the HTTP port (in the main event loop) and on the liveness port
// (--health-bind, off the main loop; a build without it refuses those probes).
// Prints one JSON line: how long the joins took to their first video frame,
// what both answered meanwhile, rtmpd's CPU and the load average.
// BENCH_RTMPD_BIN runs another build, as make bench does; take the bench lock:
//   flock /tmp/flux-bench.lock node --conditions=source hack/bench/join-storm.ts --players 2000
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { HealthProber, runStorm } from './join-storm-players.ts';
import { FIXTURES, loadFixture } from './fixture.ts';
import { CpuWindow } from './proc.ts';
import { formatProfile, monotonicMicros, summarizeProfile } from './profile.ts';
import { freePort } from '../../e2e/lib/free-port.ts';
import { REPO_ROOT, startServer, removeServerDir } from './servers.ts';
import { Samples } from './stats.ts';

const { values } = parseArgs({
  options: {
    players: { type: 'string', default: '2000' },
    fixture: { type: 'string', default: '360p' },
    'timeout-seconds': { type: 'string', default: '150' },
    // A stream nobody publishes: every player is answered 404 (viewers retrying while their publisher is away).
    missing: { type: 'boolean', default: false },
    // rtmpd's top self-time functions during the storm.
    profile: { type: 'boolean', default: false },
  },
  strict: true,
});
const players = Number(values.players);
const spec = FIXTURES[values.fixture];
if (!spec) throw new Error(`--fixture: have ${Object.keys(FIXTURES).join(', ')}`);
/** The kubelet's probe timeout is at least 1 s; this one only bounds the measurement. */
const PROBE_TIMEOUT_MS = 10_000;
const PROBE_INTERVAL_MS = 250;

/** The machine's count of SYNs dropped because a listener's accept queue was full (TcpExt ListenOverflows). */
function listenOverflows(): number {
  const lines = readFileSync('/proc/net/netstat', 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('TcpExt:'));
  const [names, values] = lines.map((line) => line.split(/\s+/));
  return Number(values![names!.indexOf('ListenOverflows')]);
}

/** The video frames rtmpd has received from the stream's publisher (the API's `video_frames`). */
async function publishedFrames(httpBase: string): Promise<number> {
  const answer = await fetch(new URL('/api/v1/rtmp/streams', httpBase));
  const { streams } = (await answer.json()) as { streams: { stream_id: string; video_frames: number }[] };
  return streams.find((stream) => stream.stream_id === 'rtmp/live/storm')?.video_frames ?? 0;
}

const summary = (values: number[]) => {
  const samples = new Samples();
  for (const v of values) samples.push(v);
  const { count, p50Ms, p99Ms, maxMs } = samples.summary();
  return { count, p50Ms: Math.round(p50Ms), p99Ms: Math.round(p99Ms), maxMs: Math.round(maxMs) };
};

const fixture = await loadFixture(spec, join(REPO_ROOT, '.bench', 'fixtures'));
const cpuProfDir = values.profile ? mkdtempSync(join(tmpdir(), 'join-storm-prof-')) : undefined;
const livenessPort = await freePort();
const server = await startServer('rtmpd', {
  ...(cpuProfDir ? { cpuProfDir } : {}),
  rtmpdEnv: { RTMPD_HEALTH_BIND: `127.0.0.1:${livenessPort}` },
});
const window = { startUs: 0, endUs: 0 };
// prettier-ignore
const publisher = spawn('ffmpeg', [
  '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', fixture.path,
  '-c', 'copy', '-f', 'flv', `${server.rtmpBase}/storm`,
], { stdio: 'ignore' });
try {
  const flvUrl = `${server.httpBase!}/storm.flv`;
  while ((await fetch(flvUrl, { method: 'HEAD' })).status !== 200) await sleep(200);
  // Into the second GOP: a joiner gets a cached GOP of about half its length.
  await sleep(3000);
  const { hostname, port, pathname } = new URL(values.missing ? `${server.httpBase!}/missing.flv` : flvUrl);
  const framesBefore = await publishedFrames(server.httpBase!);
  const loadBefore = loadavg()[0]!;
  const overflowsBefore = listenOverflows();
  const cpu = new CpuWindow(server.pid);
  cpu.start();
  const prober = new HealthProber(hostname, Number(port), PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS);
  const livenessProber = new HealthProber('127.0.0.1', livenessPort, PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS);
  const started = performance.now();
  window.startUs = monotonicMicros();
  const storm = await runStorm({
    host: hostname,
    port: Number(port),
    path: pathname,
    players,
    timeoutMs: Number(values['timeout-seconds']) * 1000,
  });
  const stormMs = performance.now() - started;
  window.endUs = monotonicMicros();
  const rtmpdCpu = cpu.stop();
  const health = await prober.stop();
  const liveness = await livenessProber.stop();
  const framesDuring = (await publishedFrames(server.httpBase!)) - framesBefore;
  const framesWindowMs = performance.now() - started;
  const line = {
    at: new Date().toISOString(),
    bin: process.env.BENCH_RTMPD_BIN ?? 'rtmpd/bin/rtmpd.js',
    players,
    fixture: spec.name,
    missing: values.missing,
    stormSeconds: +(stormMs / 1000).toFixed(1),
    joined: storm.firstVideoMs.length,
    failures: storm.failures,
    firstVideoMs: summary(storm.firstVideoMs),
    connectMs: summary(storm.connectMs),
    /** Connections established after 1 s or more: their SYN was dropped at least once (a full accept queue). */
    connectsRetried: storm.connectMs.filter((ms) => ms >= 1000).length,
    listenOverflows: listenOverflows() - overflowsBefore,
    healthMs: summary(health.latencyMs),
    healthFailed: health.failed,
    livenessMs: summary(liveness.latencyMs),
    livenessFailed: liveness.failed,
    /** The main loop's heartbeat age the liveness answers named: how long it went without a turn. */
    heartbeatAgeMaxMs: Math.max(0, ...liveness.heartbeatAgeMs),
    /** Video frames rtmpd read from the publisher from the storm's start to its end (and the probes'), against the fixture's rate in real time. */
    publisherVideoFrames: { received: framesDuring, expected: Math.floor((framesWindowMs / 1000) * spec.fps) },
    rtmpdCpuPercent: Math.round(rtmpdCpu.percent),
    load1: [+loadBefore.toFixed(1), +loadavg()[0]!.toFixed(1)],
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
} finally {
  publisher.kill('SIGTERM');
  await server.stop();
  removeServerDir(server);
}
for (const file of cpuProfDir ? readdirSync(cpuProfDir) : []) {
  if (file.endsWith('.cpuprofile')) process.stdout.write(`${formatProfile(summarizeProfile(join(cpuProfDir!, file), window, 20))}\n`);
}
