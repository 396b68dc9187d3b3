// One bench invocation: every scenario against every server, one after the
// other, each on a freshly started server.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES, loadFixture, type Fixture } from './fixture.ts';
import { FleetControlPlane } from './fleet.ts';
import { openIdleConnections, type LoadCounters } from './loadgen.ts';
import { DEFAULT_LOADGEN_PROCESSES, GENERATOR_BUSY_LIMIT, LoadProcesses } from './loadgen-processes.ts';
import { CpuWindow, ioCounts, RssSampler, rssSlopeMiBPerMinute, treeRss, type CpuUse, type IoCounts, type RssPoint } from './proc.ts';
import { monotonicMicros, summarizeProfile, type ProfileSummary } from './profile.ts';
import type { PublisherStyle } from './rtmp-peer.ts';
import { skipReason, scenarioFlags, type IdleScenario, type LoadScenario, type Scenario } from './scenarios.ts';
import { serverCloses } from './server-closes.ts';
import { REPO_ROOT, removeServerDir, startProxy, startServer, tail, type RunningServer, type ServerName } from './servers.ts';
import type { LatencySummary } from './stats.ts';

const execFileAsync = promisify(execFile);

export interface BenchOptions {
  servers: ServerName[];
  scenarios: Scenario[];
  warmupSeconds: number;
  durationSeconds: number;
  /** How publishers send; a scenario's +c overrides the chunk size. */
  publisherStyle: PublisherStyle;
  /**
   * Runs of each load scenario, the servers taking turns, so that a noisy
   * neighbour's burst does not decide a ratio (default 1).
   */
  rounds?: number;
  /** Load-generator worker processes (default DEFAULT_LOADGEN_PROCESSES). */
  loadgenProcesses?: number;
  /**
   * A TCP relay every load-generator connection goes through (RTMP only): the command, started with
   * `<listen-port> <server's port>` appended. Its CPU and system calls are reported beside the server's.
   */
  proxy?: string;
  /** .bench: fixtures, results, profiles. */
  outDir: string;
  profile: boolean;
  /** Keep the servers' temp directories (logs, recordings). */
  keep: boolean;
  /** Pause after the server listens, before its idle RSS is read (default 1000). */
  settleMs?: number;
  /** Pause after publishing stops for in-flight frames to arrive (default 1500). */
  drainMs?: number;
  log: (line: string) => void;
}

export interface LoadResult {
  type: 'load';
  scenario: string;
  server: ServerName;
  streams: number;
  playersPerStream: number;
  playProtocol: string;
  fixture: string;
  fixtureMbps: number;
  /** How this run's publishers sent. */
  publisherStyle: PublisherStyle;
  durationSeconds: number;
  ok: boolean;
  error?: string;
  cpuPercent: number;
  /** The user-space and kernel parts of cpuPercent. */
  cpuUserPercent: number;
  cpuSystemPercent: number;
  peakRssBytes: number;
  idleRssBytes: number;
  endRssBytes: number;
  /** (RSS at the end of the window − RSS before load) / streams. */
  rssPerStreamBytes: number;
  /** RSS every few seconds over the measured window, and its trend. */
  rssSeries: RssPoint[];
  rssSlopeMiBPerMinute: number;
  latency: LatencySummary;
  counters: LoadCounters;
  errors: string[];
  profile?: ProfileSummary;
  /** With several rounds: CPU% of each, in order; the other fields are from the median-CPU round. */
  cpuRounds?: number[];
  /** rtmpd only: GET /metrics timed while every stream is still live, after the CPU window. */
  metricsScrape?: ScrapeTiming;
  /** rtmpd only: the connections it refused or closed so far, by its metrics' reason (handshake_timeout, idle_timeout, ...); non-zero ones. */
  serverCloses?: Record<string, number>;
  /** --proxy: what the relay in front of the server used over the window (the other fields are the server's). */
  proxy?: ProxyCost;
  /** +fleet: the pod the players were on, which relayed every stream from the publishers' pod (the other fields). */
  relay?: { cpuPercent: number; peakRssBytes: number };
}

interface ProxyCost extends CpuUse {
  command: string;
  /** read and write system calls a second, and bytes per read. */
  readsPerSecond: number;
  writesPerSecond: number;
  bytesPerRead: number;
}

interface ScrapeTiming {
  scrapes: number;
  medianMs: number;
  maxMs: number;
  bytes: number;
}

export interface IdleResult {
  type: 'idle';
  scenario: string;
  server: ServerName;
  ok: boolean;
  error?: string;
  connections: number;
  failures: number;
  idleRssBytes: number;
  loadedRssBytes: number;
  perConnectionBytes: number;
  errors: string[];
}

type RunResult = LoadResult | IdleResult;

interface Ratio {
  scenario: string;
  peer: ServerName;
  cpu: number;
  peakRss: number;
  p99: number;
}

export interface BenchReport {
  startedAt: string;
  command: string;
  host: Record<string, string | number>;
  options: {
    warmupSeconds: number;
    durationSeconds: number;
    rounds: number;
    loadgenProcesses: number;
    publisherStyle: PublisherStyle;
    proxy?: string;
    servers: ServerName[];
    scenarios: string[];
  };
  fixtures: { name: string; path: string; mbps: number; width: number; height: number; fps: number; profile: string }[];
  results: RunResult[];
  ratios: Ratio[];
}

function version(cmd: string, args: string[], pattern: RegExp): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return pattern.exec(out)?.[1] ?? 'unknown';
  } catch (err) {
    const e = err as { stderr?: string };
    return pattern.exec(e.stderr ?? '')?.[1] ?? 'unknown';
  }
}

/** The commit of the rtmpd under test: this checkout's, or that of the checkout BENCH_RTMPD_BIN lies in. */
function rtmpdCommit(): string {
  const bin = process.env.BENCH_RTMPD_BIN;
  const named = bin ? ` (BENCH_RTMPD_BIN=${bin})` : '';
  const git = (...args: string[]) => execFileSync('git', args, { cwd: bin ? dirname(bin) : REPO_ROOT, encoding: 'utf8' }).trim();
  try {
    const dirty = git('status', '--porcelain', '--', ':/rtmpd/src') ? ' + uncommitted rtmpd/src changes' : '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty}${named}`;
  } catch {
    return bin ? `unknown${named}, not a git checkout` : 'unknown, not a git checkout';
  }
}

function hostInfo(): Record<string, string | number> {
  // nginx -v prints to stderr.
  const nginx = /nginx\/(\S+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr ?? '')?.[1];
  let nginxRtmp = 'unknown';
  try {
    nginxRtmp = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libnginx-mod-rtmp'], { encoding: 'utf8' });
  } catch {
    // not a Debian host
  }
  const nms = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/node-media-server/package.json'), 'utf8')) as { version: string };
  return {
    rtmpdCommit: rtmpdCommit(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    nginx: nginx ?? 'unknown (nginx -v failed)',
    nginxRtmp,
    nodeMediaServer: nms.version,
    ffmpeg: version('ffmpeg', ['-version'], /ffmpeg version (\S+)/),
  };
}

export async function runBench(options: BenchOptions, command = ''): Promise<BenchReport> {
  const { log } = options;
  if (options.servers.includes('rtmpd') && !existsSync(join(REPO_ROOT, 'rtmpd/dist/main.js'))) {
    throw new Error('rtmpd is not built: run `npx tsc -b` (or `make build`) first');
  }
  const fixtures = new Map<string, Fixture>();
  for (const s of options.scenarios) {
    if (s.type !== 'load' || fixtures.has(s.fixture)) continue;
    log(`fixture ${s.fixture}: encoding with ffmpeg unless cached...`);
    fixtures.set(s.fixture, await loadFixture(FIXTURES[s.fixture]!, join(options.outDir, 'fixtures')));
  }
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    command,
    host: hostInfo(),
    options: {
      warmupSeconds: options.warmupSeconds,
      durationSeconds: options.durationSeconds,
      rounds: options.rounds ?? 1,
      loadgenProcesses: options.loadgenProcesses ?? DEFAULT_LOADGEN_PROCESSES,
      publisherStyle: options.publisherStyle,
      ...(options.proxy ? { proxy: options.proxy } : {}),
      servers: options.servers,
      scenarios: options.scenarios.map((s) => s.id),
    },
    fixtures: [...fixtures.values()].map((f) => ({
      name: f.spec.name,
      path: f.path,
      mbps: f.bitrateBps / 1e6,
      width: f.spec.width,
      height: f.spec.height,
      fps: f.spec.fps,
      profile: f.spec.profile,
    })),
    results: [],
    ratios: [],
  };
  const fleetPlane = options.scenarios.some((s) => s.type === 'load' && s.fleet && options.servers.includes('rtmpd'))
    ? await startFleetPlane(options)
    : undefined;
  try {
    await runScenarios(options, fixtures, report, fleetPlane);
  } finally {
    await fleetPlane?.down();
  }
  report.ratios = ratios(report.results);
  return report;
}

async function startFleetPlane(options: BenchOptions): Promise<FleetControlPlane> {
  options.log('fleet: starting the local control plane (hack/cluster.sh; built once per machine)...');
  return FleetControlPlane.up(join(options.outDir, 'cluster'));
}

async function runScenarios(
  options: BenchOptions,
  fixtures: Map<string, Fixture>,
  report: BenchReport,
  fleetPlane: FleetControlPlane | undefined,
): Promise<void> {
  const { log } = options;
  for (const scenario of options.scenarios) {
    const servers = options.servers.filter((server) => skipReason(scenario, server) === undefined);
    // Idle memory does not depend on the neighbours: one round.
    const rounds = scenario.type === 'load' ? (options.rounds ?? 1) : 1;
    const runs = new Map<ServerName, RunResult[]>(servers.map((server) => [server, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const server of servers) {
        log(`${scenario.id} on ${server}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''}...`);
        const result =
          scenario.type === 'load'
            ? await runLoad(scenario, server, fixtures.get(scenario.fixture)!, options, fleetPlane)
            : await runIdle(scenario, server, options);
        runs.get(server)!.push(result);
        log(`  ${summaryLine(result)}`);
      }
    }
    for (const server of servers) report.results.push(medianRun(runs.get(server)!));
  }
}

function summaryLine(r: RunResult): string {
  if (!r.ok) return `FAILED: ${r.error}`;
  if (r.type === 'idle') return `${r.connections} idle connections: +${(r.perConnectionBytes / 1024).toFixed(1)} KiB each`;
  const failures = failureSummary(r);
  const busy = generatorLimit(r);
  return `cpu ${r.cpuPercent.toFixed(1)}%, peak rss ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB, p99 ${r.latency.p99Ms.toFixed(1)} ms, lost ${r.counters.framesLost}; ${generatorSummary(r.counters)}${failures ? `; ${failures}` : ''}${busy ? `\n  WARNING: ${busy}` : ''}`;
}

/** Each load-generator process's CPU, event-loop busy share and loop-delay p99 over the window. */
function generatorSummary(c: LoadCounters): string {
  const each = c.generatorProcesses.map(
    (g) =>
      `${g.cpuPercent.toFixed(0)}% CPU, loop ${(g.eventLoopUtilization * 100).toFixed(0)}% busy, delay p99 ${g.loopDelayP99Ms.toFixed(0)} ms`,
  );
  return `load generator ${each.join(' | ')}`;
}

/** Says so when a load-generator process was busy enough to be part of what the run measured; '' when none was. */
export function generatorLimit(r: LoadResult): string {
  const busiest = r.counters?.generatorEventLoopUtilization;
  if (!(busiest > GENERATOR_BUSY_LIMIT)) return '';
  return `the load generator was the limit: a process's event loop was ${(busiest * 100).toFixed(0)}% busy (over ${GENERATOR_BUSY_LIMIT * 100}%), its loop delay p99 up to ${r.counters.generatorLoopDelayP99Ms.toFixed(0)} ms, so latency measures it too`;
}

/** Why connections failed or were dropped, by the clients' account and by rtmpd's; '' when none did. */
export function failureSummary(r: LoadResult): string {
  const counted = (counts: Record<string, number>) =>
    Object.entries(counts)
      .map(([reason, n]) => `${reason} ×${n}`)
      .join(', ');
  const clients = r.counters ? counted(r.counters.failureReasons) : '';
  const server = r.serverCloses ? counted(r.serverCloses) : '';
  if (!clients && !server) return '';
  return `connections failed or dropped: ${clients || 'none'}${r.serverCloses ? `; rtmpd closed or refused: ${server || 'none'}` : ''}`;
}

/** A point of the RSS series every this often (at least 10 points per window). */
function seriesEveryMs(durationSeconds: number): number {
  return Math.min(5000, (durationSeconds * 1000) / 10);
}

async function runLoad(
  s: LoadScenario,
  name: ServerName,
  fixture: Fixture,
  options: BenchOptions,
  fleetPlane: FleetControlPlane | undefined,
): Promise<LoadResult> {
  const result = unmeasuredResult(s, name, fixture, options);
  const profDir =
    options.profile && name === 'rtmpd' ? join(options.outDir, 'prof', `${Date.now()}-${s.id.replace(/[^\w.-]/g, '_')}`) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const run: LoadRun = {};
  const measured = { startUs: NaN, endUs: NaN };
  try {
    await startServers(run, s, name, options, fleetPlane, profDir);
    await startLoad(run, result, s, fixture, options);
    await measureWindow(run, result, options, measured);
    await endLoad(run, result, name, options);
    result.ok = true;
  } catch (err) {
    result.error = (err as Error).message;
    await run.gen?.stop(0).catch(() => {});
  } finally {
    await stopRun(run, result, s, options);
  }
  if (profDir) {
    // rtmpd's launcher restarts itself with its Node flags, and both processes write a profile: the server's is the larger.
    const file = readdirSync(profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size)[0];
    if (file && result.ok) result.profile = summarizeProfile(join(profDir, file), measured, 25, REPO_ROOT);
    else result.errors.push(`no .cpuprofile written to ${profDir}`);
  }
  return result;
}

/** What a load run has started so far: the server (a fleet's owner), a --proxy or a fleet's relay, their RSS samplers, the load generator. */
interface LoadRun {
  server?: RunningServer;
  proxy?: RunningServer;
  relay?: RunningServer;
  sampler?: RssSampler;
  relaySampler?: RssSampler;
  gen?: LoadProcesses;
}

/** The result of a scenario before anything is measured: what it ran, with every figure NaN. */
function unmeasuredResult(s: LoadScenario, name: ServerName, fixture: Fixture, options: BenchOptions): LoadResult {
  return {
    type: 'load',
    scenario: s.id,
    server: name,
    streams: s.streams,
    playersPerStream: s.playersPerStream,
    playProtocol: s.playProtocol,
    fixture: s.fixture,
    fixtureMbps: fixture.bitrateBps / 1e6,
    publisherStyle: { ...options.publisherStyle, chunkSize: s.publisherChunkSize ?? options.publisherStyle.chunkSize },
    durationSeconds: s.durationSeconds ?? options.durationSeconds,
    ok: false,
    cpuPercent: NaN,
    cpuUserPercent: NaN,
    cpuSystemPercent: NaN,
    peakRssBytes: NaN,
    idleRssBytes: NaN,
    endRssBytes: NaN,
    rssPerStreamBytes: NaN,
    rssSeries: [],
    rssSlopeMiBPerMinute: NaN,
    latency: { count: 0, meanMs: NaN, p50Ms: NaN, p95Ms: NaN, p99Ms: NaN, maxMs: NaN },
    counters: undefined as unknown as LoadCounters,
    errors: [],
  };
}

/** The server, and a --proxy in front of it; for a +fleet scenario a pair of fleet pods, the owner as the server. */
async function startServers(
  run: LoadRun,
  s: LoadScenario,
  name: ServerName,
  options: BenchOptions,
  fleetPlane: FleetControlPlane | undefined,
  profDir: string | undefined,
): Promise<void> {
  const serverOptions = {
    recording: s.recording,
    rtmpdFlags: scenarioFlags(s),
    httpFlv: s.playProtocol === 'http-flv' || s.playProtocol === 'mixed',
    ...(profDir ? { cpuProfDir: profDir } : {}),
  };
  if (s.fleet) {
    if (options.proxy) throw new Error('--proxy does not go with a +fleet scenario');
    if (!fleetPlane) throw new Error('a +fleet scenario needs the local control plane');
    ({ owner: run.server, relay: run.relay } = await fleetPlane.startPair(serverOptions));
    run.relaySampler = new RssSampler(run.relay.pid);
  } else {
    run.server = await startServer(name, serverOptions);
    if (options.proxy) run.proxy = await startProxy(options.proxy, run.server);
  }
}

/** Reads the server's idle RSS once it has settled, then connects the publishers and players and lets them warm up. */
async function startLoad(run: LoadRun, result: LoadResult, s: LoadScenario, fixture: Fixture, options: BenchOptions): Promise<void> {
  const server = run.server!;
  await sleep(options.settleMs ?? 1000);
  result.idleRssBytes = treeRss(server.pid);
  run.sampler = new RssSampler(server.pid);
  run.gen = new LoadProcesses({
    rtmpBase: (run.proxy ?? server).rtmpBase,
    httpBase: server.httpBase,
    ...(run.relay ? { players: { rtmpBase: run.relay.rtmpBase, httpBase: run.relay.httpBase } } : {}),
    streams: s.streams,
    playersPerStream: s.playersPerStream,
    playProtocol: s.playProtocol,
    fixture,
    publisherStyle: result.publisherStyle,
    ...(options.loadgenProcesses ? { processes: options.loadgenProcesses } : {}),
  });
  await run.gen.start();
  await sleep(options.warmupSeconds * 1000);
}

/** The measured window: the servers' CPU, the server's RSS series and the players' latency over durationSeconds. */
async function measureWindow(
  run: LoadRun,
  result: LoadResult,
  options: BenchOptions,
  measured: { startUs: number; endUs: number },
): Promise<void> {
  const { relay, proxy } = run;
  const sampler = run.sampler!;
  const gen = run.gen!;
  const cpu = new CpuWindow(run.server!.pid);
  const relayCpu = relay ? new CpuWindow(relay.pid) : undefined;
  const proxyWindow = proxy ? new ProxyWindow(proxy.pid, options.proxy!) : undefined;
  cpu.start();
  relayCpu?.start();
  proxyWindow?.start();
  sampler.recordSeries(seriesEveryMs(result.durationSeconds));
  await gen.beginMeasure();
  measured.startUs = monotonicMicros();
  await sleep(result.durationSeconds * 1000);
  measured.endUs = monotonicMicros();
  const used = cpu.stop();
  if (relayCpu) result.relay = { cpuPercent: relayCpu.stop().percent, peakRssBytes: NaN };
  if (proxyWindow) result.proxy = proxyWindow.stop();
  result.cpuPercent = used.percent;
  result.cpuUserPercent = used.userPercent;
  result.cpuSystemPercent = used.systemPercent;
  sampler.endSeries();
  await gen.endMeasure();
}

/** After the window: the RSS at its end, rtmpd's /metrics scrape times and closes, the load stopped; fails if a server died. */
async function endLoad(run: LoadRun, result: LoadResult, name: ServerName, options: BenchOptions): Promise<void> {
  const server = run.server!;
  result.endRssBytes = run.sampler!.sample();
  if (name === 'rtmpd' && server.httpBase) {
    const metrics = new URL('/metrics', server.httpBase);
    result.metricsScrape = await timeScrapes(metrics, 10);
    result.serverCloses = await serverCloses(metrics);
  }
  await run.gen!.stop(options.drainMs ?? 1500);
  for (const proc of [server, run.proxy, run.relay]) {
    const died = proc?.exited();
    if (died) throw new Error(`server exited during the run (${died}):\n${tail(proc!.logPath)}`);
  }
}

/** Stops what the run started and fills in what its samplers and load generator gathered, also after a failure. */
async function stopRun(run: LoadRun, result: LoadResult, s: LoadScenario, options: BenchOptions): Promise<void> {
  const { server, sampler, relaySampler, gen } = run;
  sampler?.stop();
  relaySampler?.stop();
  if (result.relay && relaySampler) result.relay.peakRssBytes = relaySampler.peak;
  for (const helper of [run.relay, run.proxy]) {
    if (!helper) continue;
    await helper.stop();
    if (!options.keep) removeServerDir(helper);
  }
  if (sampler) {
    result.peakRssBytes = sampler.peak;
    result.rssSeries = sampler.series;
    result.rssSlopeMiBPerMinute = rssSlopeMiBPerMinute(sampler.series);
  }
  if (gen) {
    result.latency = gen.latency.summary();
    result.counters = gen.counters;
    result.errors = gen.errors;
  }
  result.rssPerStreamBytes = (result.endRssBytes - result.idleRssBytes) / s.streams;
  if (server) {
    await server.stop();
    // A run where connections failed keeps the server's log, which says why.
    const failed = result.counters && result.counters.connectFailures + result.counters.droppedConnections > 0;
    if (failed) result.errors.push(`server log kept: ${server.logPath}`);
    if (!options.keep && !failed) removeServerDir(server);
  }
}

/** A --proxy's CPU and read and write system calls over the measured window. */
class ProxyWindow {
  private readonly pid: number;
  private readonly command: string;
  private readonly cpu: CpuWindow;
  private startIo: IoCounts | undefined;
  private startAt = 0;

  constructor(pid: number, command: string) {
    this.pid = pid;
    this.command = command;
    this.cpu = new CpuWindow(pid);
  }

  start(): void {
    this.cpu.start();
    this.startIo = ioCounts(this.pid);
    this.startAt = performance.now();
  }

  stop(): ProxyCost {
    const cpu = this.cpu.stop();
    const io = ioCounts(this.pid);
    const seconds = (performance.now() - this.startAt) / 1000;
    const reads = io.reads - this.startIo!.reads;
    return {
      command: this.command,
      ...cpu,
      readsPerSecond: reads / seconds,
      writesPerSecond: (io.writes - this.startIo!.writes) / seconds,
      bytesPerRead: (io.bytesRead - this.startIo!.bytesRead) / reads,
    };
  }
}

/**
 * What one Prometheus scrape of rtmpd costs with the scenario's streams live:
 * GET /metrics timed with curl, a client of its own (a fetch from here would
 * also time this process's event loop).
 */
async function timeScrapes(url: URL, scrapes: number): Promise<ScrapeTiming> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i <= scrapes; i++) {
    const { stdout } = await execFileAsync('curl', ['-fsS', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', url.href]);
    const [seconds, size] = stdout.split(' ').map(Number);
    bytes = size!;
    if (i > 0) times.push(seconds! * 1000); // the first one warms up
  }
  times.sort((a, b) => a - b);
  return { scrapes, medianMs: times[Math.floor(scrapes / 2)]!, maxMs: times.at(-1)!, bytes };
}

async function runIdle(s: IdleScenario, name: ServerName, options: BenchOptions): Promise<IdleResult> {
  const result: IdleResult = {
    type: 'idle',
    scenario: s.id,
    server: name,
    ok: false,
    connections: s.connections,
    failures: 0,
    idleRssBytes: NaN,
    loadedRssBytes: NaN,
    perConnectionBytes: NaN,
    errors: [],
  };
  let server: RunningServer | undefined;
  let clients: { close(): void }[] = [];
  try {
    server = await startServer(name, {});
    await sleep(options.settleMs ?? 1000);
    result.idleRssBytes = treeRss(server.pid);
    const opened = await openIdleConnections(server.rtmpBase, s.connections);
    clients = opened.clients;
    result.failures = opened.failures;
    result.errors = opened.errors;
    await sleep(2 * (options.settleMs ?? 1000));
    result.loadedRssBytes = treeRss(server.pid);
    result.perConnectionBytes = (result.loadedRssBytes - result.idleRssBytes) / Math.max(1, clients.length);
    const died = server.exited();
    if (died) throw new Error(`server exited during the run (${died}):\n${tail(server.logPath)}`);
    result.ok = true;
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    for (const c of clients) c.close();
    if (server) {
      await server.stop();
      if (!options.keep) removeServerDir(server);
    }
  }
  return result;
}

/** The run that stands for several: a failed one if any failed, else the one with the median CPU. */
function medianRun(runs: RunResult[]): RunResult {
  if (runs.length === 1) return runs[0]!;
  const failed = runs.find((r) => !r.ok);
  if (failed) return failed;
  const load = runs as LoadResult[];
  const byCpu = [...load].sort((a, b) => a.cpuPercent - b.cpuPercent);
  return { ...byCpu[Math.floor((byCpu.length - 1) / 2)]!, cpuRounds: load.map((r) => r.cpuPercent) };
}

function ratios(results: RunResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const r of results) {
    if (r.type !== 'load' || r.server !== 'rtmpd' || !r.ok) continue;
    for (const peer of results) {
      if (peer.type !== 'load' || peer.scenario !== r.scenario || peer.server === 'rtmpd' || !peer.ok) continue;
      out.push({
        scenario: r.scenario,
        peer: peer.server,
        cpu: r.cpuPercent / peer.cpuPercent,
        peakRss: r.peakRssBytes / peer.peakRssBytes,
        p99: r.latency.p99Ms / peer.latency.p99Ms,
      });
    }
  }
  return out;
}
