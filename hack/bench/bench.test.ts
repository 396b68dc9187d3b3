// Smoke run of the benchmark (part of make test): the same code on a tiny
// load, asserting the tool works and frames arrive; no speed assertions.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBench, type BenchReport, type LoadResult } from './bench.ts';
import { formatReport, writeReport } from './report.ts';
import { OBS_STYLE } from './rtmp-peer.ts';
import { parseScenario } from './scenarios.ts';
import { REPO_ROOT, type ServerName } from './servers.ts';

const outDir = join(REPO_ROOT, '.bench'); // fixture cache shared with make bench
const resultsDir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
afterAll(() => rmSync(resultsDir, { recursive: true, force: true }));

async function smoke(
  servers: ServerName[],
  scenarios: string[],
  durationSeconds: number,
  rounds = 1,
  proxy?: string,
): Promise<BenchReport> {
  return runBench({
    ...(proxy ? { proxy } : {}),
    servers,
    scenarios: scenarios.map(parseScenario),
    warmupSeconds: 1,
    durationSeconds,
    rounds,
    publisherStyle: OBS_STYLE,
    outDir,
    profile: false,
    keep: false,
    settleMs: 200,
    drainMs: 500,
    log: () => {},
  });
}

function expectHealthy(r: LoadResult): void {
  expect(r.error).toBeUndefined();
  expect(r.ok).toBe(true);
  expect(r.counters.connectFailures + r.counters.droppedConnections + r.counters.playersWithoutMedia).toBe(0);
  expect(r.counters.failureReasons).toEqual({});
  expect(r.counters.publishersUp).toBe(r.streams);
  expect(r.counters.playersUp).toBe(r.streams * r.playersPerStream);
  expect(r.counters.videoFramesReceived).toBeGreaterThan(0);
  expect(r.latency.count).toBeGreaterThan(0);
  for (const v of [r.latency.p50Ms, r.latency.p95Ms, r.latency.p99Ms, r.latency.maxMs, r.cpuPercent, r.peakRssBytes])
    expect(Number.isFinite(v)).toBe(true);
  expect(r.latency.p50Ms).toBeGreaterThanOrEqual(0);
}

describe('bench smoke', () => {
  it('reads probed frames back through HLS and LL-HLS with recording on', async () => {
    const report = await smoke(['rtmpd'], ['2x1@360p/hls+rec', '2x1@360p/llhls+rec'], 4);
    expect(report.results.map((r) => r.scenario)).toEqual(['2x1@360p/hls+rec', '2x1@360p/llhls+rec']);
    for (const r of report.results) expectHealthy(r as LoadResult);
  });

  it('relays probed frames through rtmpd in two rounds and measures idle connections', async () => {
    const report = await smoke(['rtmpd'], ['3x2@360p', 'idle20'], 3, 2);
    expect(report.results).toHaveLength(2);
    const [rtmp, idle] = report.results;
    expectHealthy(rtmp as LoadResult);
    // The row stands for both rounds: the lower median of two is the lower CPU.
    const { cpuRounds, cpuPercent } = rtmp as LoadResult;
    expect(cpuRounds).toHaveLength(2);
    expect(cpuPercent).toBe(Math.min(...cpuRounds!));
    expect(formatReport(report)).toMatch(/2 rounds per load scenario/);
    // The load generator ran as two processes, each reported on its own line.
    expect((rtmp as LoadResult).counters.generatorProcesses).toHaveLength(2);
    expect(formatReport(report)).toMatch(/load generator, 2 processes[^\n]*\n.*\n.*\n3x2@360p +rtmpd +1 .*\n3x2@360p +rtmpd +2 /);
    // rtmpd's /metrics was scraped with the streams live, and the report shows it.
    expect((rtmp as LoadResult).metricsScrape).toMatchObject({ scrapes: 10, bytes: expect.any(Number) });
    // rtmpd's own count of the connections it closed (handshake_timeout, idle_timeout, ...): none here.
    expect((rtmp as LoadResult).serverCloses).toEqual({});
    expect(formatReport(report)).toMatch(/rtmpd GET \/metrics with every stream live[^\n]*\n.*\n.*\n3x2@360p +3 /);
    expect(idle).toMatchObject({ type: 'idle', server: 'rtmpd', ok: true, connections: 20, failures: 0 });
    expect(idle).not.toHaveProperty('cpuRounds');
    // The JSON file has the shape the README and tooling read.
    const written = writeReport(report, resultsDir);
    const json = JSON.parse(readFileSync(written.json, 'utf8')) as BenchReport;
    expect(existsSync(join(resultsDir, 'latest.json'))).toBe(true);
    // The chart sits next to the JSON: a bar per metric for the load row, each round's CPU as a tick.
    const svg = readFileSync(written.svg, 'utf8');
    expect(svg).toMatch(/^<svg [^>]*>.*<\/svg>\n$/s);
    for (const tag of svg.match(/<[a-z]+ [^>]*>/g)!) {
      const names = [...tag.matchAll(/ ([a-z-]+)=/g)].map((m) => m[1]);
      expect(new Set(names).size, tag).toBe(names.length); // a repeated attribute makes the SVG unreadable
    }
    expect(svg).toContain('>3x2@360p</text>');
    expect(svg.match(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="8" fill="#1f6fb4"\/>/g)).toHaveLength(3);
    expect(svg.match(/stroke="#000"/g)).toHaveLength(2);
    expect(json).toMatchObject({ options: { servers: ['rtmpd'] }, host: { nodeMediaServer: '4.4.3' } });
    expect(json.fixtures[0]).toMatchObject({ name: '360p', width: 640, height: 360 });
    expect(json.results[0]).toMatchObject({
      type: 'load',
      scenario: '3x2@360p',
      server: 'rtmpd',
      latency: { p50Ms: expect.any(Number), p95Ms: expect.any(Number), p99Ms: expect.any(Number), maxMs: expect.any(Number) },
      counters: { framesLost: expect.any(Number), connectFailures: 0 },
    });
  });

  // Starts a control plane of its own (hack/cluster.sh): built already by the cluster suites' global setup, else built here.
  it('relays probed frames from one fleet pod to the players on another, with both pods measured', { timeout: 1_800_000 }, async () => {
    const report = await smoke(['rtmpd', 'nginx'], ['2x2@360p', '2x2@360p+fleet'], 3);
    expect(report.results.map((r) => `${r.scenario} ${r.server}`)).toEqual(['2x2@360p rtmpd', '2x2@360p nginx', '2x2@360p+fleet rtmpd']);
    const fleet = report.results[2] as LoadResult;
    expectHealthy(fleet);
    expect(fleet.relay!.cpuPercent).toBeGreaterThan(0);
    expect(fleet.relay!.peakRssBytes).toBeGreaterThan(0);
    expect(formatReport(report)).toMatch(/fleet \(\+fleet\)[^\n]*\n.*\n.*\n2x2@360p\+fleet +[\d.]+ +[\d.]+ +\d+ +[\d.]+ +-?[\d.]+\n/);
  });

  it('runs every connection through a relay in Node or in C (--proxy) and counts its reads and writes', async () => {
    const cProxy = join(resultsDir, 'floor-proxy');
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', cProxy, join(REPO_ROOT, 'hack/bench/floor/proxy.c')]);
    const nodeProxy = `${process.execPath} ${join(REPO_ROOT, 'hack/bench/floor/proxy.ts')}`;
    for (const proxy of [cProxy, `${nodeProxy} net`, `${nodeProxy} rtmpd`]) {
      const report = await smoke(['nginx'], ['2x1@360p'], 2, 1, proxy);
      const r = report.results[0] as LoadResult;
      expectHealthy(r);
      // Every publisher's and player's bytes went through it: a read and a write per segment, each way.
      expect(r.proxy, proxy).toMatchObject({ command: proxy });
      expect(r.proxy!.readsPerSecond).toBeGreaterThan(50);
      expect(r.proxy!.writesPerSecond).toBeGreaterThan(50);
      expect(r.proxy!.bytesPerRead).toBeGreaterThan(100);
      expect(formatReport(report)).toMatch(/proxy \(--proxy [^\n]*\n.*\n.*\n2x1@360p +nginx +[\d.]+ +\d+\/\d+ +\d+ +\d+ +\d+\n/);
    }
  });

  it('runs the same load against nginx-rtmp and node-media-server, over RTMP and HTTP-FLV, and computes ratios', async () => {
    const report = await smoke(['rtmpd', 'nginx', 'nms'], ['2x1@360p', '2x1@360p/flv'], 2);
    expect(report.results.map((r) => `${r.scenario} ${r.server}`)).toEqual([
      '2x1@360p rtmpd',
      '2x1@360p nginx',
      '2x1@360p nms',
      '2x1@360p/flv rtmpd', // nginx-rtmp has no HTTP-FLV
      '2x1@360p/flv nms',
    ]);
    for (const r of report.results) expectHealthy(r as LoadResult);
    expect(report.ratios.map((r) => `${r.scenario} ${r.peer}`)).toEqual(['2x1@360p nginx', '2x1@360p nms', '2x1@360p/flv nms']);
  });
});
