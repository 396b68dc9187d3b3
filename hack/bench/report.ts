// The bench's output: a terminal table, a JSON file and the chart next to it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failureSummary, generatorLimit, type BenchReport, type IdleResult, type LoadResult } from './bench.ts';
import { renderChart } from './chart.ts';
import { GENERATOR_BUSY_LIMIT } from './loadgen-processes.ts';
import { formatProfile } from './profile.ts';

const mib = (b: number): string => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(0) : '-');
const ms = (v: number): string => (!Number.isFinite(v) ? '-' : v < 10 ? v.toFixed(1) : v.toFixed(0));
const pct = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '-');
const ratio = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '-');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatReport(report: BenchReport): string {
  const out = [...setupLines(report), ''];
  const load = report.results.filter((r) => r.type === 'load');
  if (load.length > 0) out.push(loadTable(load, report.options.rounds));
  const idle = report.results.filter((r) => r.type === 'idle');
  if (idle.length > 0) out.push('', idleTable(idle));
  detailTables(out, report, load);
  problems(out, report, load);
  return out.join('\n');
}

/** What ran where, and how it was measured. */
function setupLines(report: BenchReport): string[] {
  const h = report.host;
  const style = report.options.publisherStyle;
  const { rounds } = report.options;
  const roundsNote = rounds > 1 ? `; ${rounds} rounds per load scenario, servers taking turns, each row the median-CPU round` : '';
  return [
    `host: ${h.cpus} × ${h.cpuModel}, ${h.memoryGiB} GiB, Linux ${h.kernel}; node ${h.node}, nginx ${h.nginx} + rtmp ${h.nginxRtmp}, node-media-server ${h.nodeMediaServer}; rtmpd at ${h.rtmpdCommit}`,
    `fixtures: ${report.fixtures.map((f) => `${f.name} ${f.width}x${f.height}@${f.fps} ${f.profile} ${f.mbps.toFixed(2)} Mbps`).join('; ')}`,
    `publishers: ${style.chunkSize === 'server' ? "the server's" : style.chunkSize}-byte chunks (a scenario's +c overrides), Nagle ${style.nagle ? 'on' : 'off'}, one socket write per ${style.writes}; players acknowledge as librtmp`,
    `window: ${report.options.warmupSeconds} s warm-up, ${report.options.durationSeconds} s measured${roundsNote}; CPU = % of one core (process tree; usr/sys: user space and kernel, which on loopback includes the receiving side of what the server sends), latency = SEI send → player receipt`,
  ];
}

/** The load scenarios, a row per scenario and server. */
function loadTable(load: LoadResult[], rounds: number): string {
  return table(
    [
      'scenario',
      'server',
      'CPU%',
      'usr/sys',
      'peakRSS MiB',
      'RSS/stream KiB',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'max ms',
      'frames rx',
      'lost',
      'conn fail',
      'gen CPU%',
      'status',
      ...(rounds > 1 ? ['CPU% by round'] : []),
    ],
    load.map((r) => {
      const c = r.counters;
      const fails = c ? c.connectFailures + c.droppedConnections + c.playersWithoutMedia : NaN;
      return [
        r.scenario,
        r.server,
        pct(r.cpuPercent),
        `${r.cpuUserPercent.toFixed(0)}/${r.cpuSystemPercent.toFixed(0)}`,
        mib(r.peakRssBytes),
        Number.isFinite(r.rssPerStreamBytes) ? (r.rssPerStreamBytes / 1024).toFixed(0) : '-',
        ms(r.latency.p50Ms),
        ms(r.latency.p95Ms),
        ms(r.latency.p99Ms),
        ms(r.latency.maxMs),
        c ? String(c.videoFramesReceived) : '-',
        c ? String(c.framesLost + c.framesOutOfOrder) : '-',
        String(fails),
        c ? pct(c.generatorCpuPercent) : '-',
        r.ok ? 'ok' : 'FAILED',
        ...(rounds > 1 ? [(r.cpuRounds ?? [r.cpuPercent]).map(pct).join(' ')] : []),
      ];
    }),
  );
}

/** The idle scenarios: memory before and with the connections. */
function idleTable(idle: IdleResult[]): string {
  return table(
    ['scenario', 'server', 'RSS before MiB', 'RSS with conns MiB', 'per conn KiB', 'failures', 'status'],
    idle.map((r) => [
      r.scenario,
      r.server,
      mib(r.idleRssBytes),
      mib(r.loadedRssBytes),
      Number.isFinite(r.perConnectionBytes) ? (r.perConnectionBytes / 1024).toFixed(1) : '-',
      String(r.failures),
      r.ok ? 'ok' : 'FAILED',
    ]),
  );
}

/** The tables a run has rows for: memory over time, the metrics scrape, the fleet, the proxy, the ratios, the load generator. */
function detailTables(out: string[], report: BenchReport, load: LoadResult[]): void {
  const soaks = load.filter((r) => r.ok && r.rssSeries.length > 1 && r.durationSeconds >= 120);
  titledTable(
    out,
    'memory over the measured window:',
    ['scenario', 'server', 'RSS first MiB', 'RSS last MiB', 'trend MiB/min'],
    soaks.map((r) => [r.scenario, r.server, mib(r.rssSeries[0]!.bytes), mib(r.rssSeries.at(-1)!.bytes), r.rssSlopeMiBPerMinute.toFixed(2)]),
  );
  titledTable(
    out,
    'rtmpd GET /metrics with every stream live (after the CPU window):',
    ['scenario', 'streams', 'median ms', 'max ms', 'KiB'],
    load.flatMap((r) => {
      const t = r.ok ? r.metricsScrape : undefined;
      return t ? [[r.scenario, String(r.streams), t.medianMs.toFixed(1), t.maxMs.toFixed(1), (t.bytes / 1024).toFixed(0)]] : [];
    }),
  );
  titledTable(
    out,
    "fleet (+fleet): publishers on pod edge-0, players on edge-1, which pulls each stream once from edge-0; the main table's CPU and RSS are edge-0's; added p99 = p99 minus that of the same scenario without +fleet in this run:",
    ['scenario', 'edge-0 CPU%', 'edge-1 CPU%', 'edge-1 peak RSS MiB', 'p99 ms', 'added p99 ms'],
    load.flatMap((r) => {
      if (!r.ok || !r.relay) return [];
      const direct = load.find((d) => d.ok && d.server === 'rtmpd' && d.scenario === r.scenario.replace('+fleet', ''));
      const added = direct ? ms(r.latency.p99Ms - direct.latency.p99Ms) : '-';
      return [[r.scenario, pct(r.cpuPercent), pct(r.relay.cpuPercent), mib(r.relay.peakRssBytes), ms(r.latency.p99Ms), added]];
    }),
  );
  titledTable(
    out,
    `proxy (--proxy ${report.options.proxy ?? ''}): the relay every RTMP connection went through; the main table's CPU is the server's alone; reads and writes are its read and write system calls:`,
    ['scenario', 'server', 'proxy CPU%', 'usr/sys', 'reads/s', 'writes/s', 'bytes/read'],
    load.flatMap((r) => {
      const p = r.ok ? r.proxy : undefined;
      if (!p) return [];
      const rate = (v: number) => v.toFixed(0);
      return [
        [
          r.scenario,
          r.server,
          pct(p.percent),
          `${p.userPercent.toFixed(0)}/${p.systemPercent.toFixed(0)}`,
          rate(p.readsPerSecond),
          rate(p.writesPerSecond),
          rate(p.bytesPerRead),
        ],
      ];
    }),
  );
  titledTable(
    out,
    'rtmpd / peer (below 1 = rtmpd better):',
    ['scenario', 'peer', 'CPU', 'peak RSS', 'p99'],
    report.ratios.map((r) => [r.scenario, r.peer, ratio(r.cpu), ratio(r.peakRss), ratio(r.p99)]),
  );
  titledTable(
    out,
    `load generator, ${report.options.loadgenProcesses} processes (gen CPU% above is their sum); over ${GENERATOR_BUSY_LIMIT * 100}% busy, a process's delays are part of the latency measured; loop delay counts the 10 ms timer period, so an idle loop reads 10–13 ms:`,
    ['scenario', 'server', 'process', 'CPU%', 'usr/sys', 'loop busy %', 'loop delay p99 ms'],
    load.flatMap((r) =>
      (r.counters?.generatorProcesses ?? []).map((g, i) => [
        r.scenario,
        r.server,
        String(i + 1),
        pct(g.cpuPercent),
        `${(g.cpuPercent - g.cpuSystemPercent).toFixed(0)}/${g.cpuSystemPercent.toFixed(0)}`,
        pct(g.eventLoopUtilization * 100),
        ms(g.loopDelayP99Ms),
      ]),
    ),
  );
}

/** The generator's warnings, each failed scenario's errors, and the profiles taken. */
function problems(out: string[], report: BenchReport, load: LoadResult[]): void {
  for (const r of load) {
    const busy = generatorLimit(r);
    if (busy) out.push(`WARNING: ${r.scenario} on ${r.server}: ${busy}`);
  }
  for (const r of report.results) {
    const failures = r.type === 'load' ? failureSummary(r) : '';
    if (r.ok && r.errors.length === 0 && !failures) continue;
    out.push('');
    out.push(`${r.scenario} on ${r.server}: ${r.error ?? ''}`);
    if (failures) out.push(`  ${failures}`);
    for (const e of r.errors) out.push(`  ${e}`);
  }
  for (const r of load) {
    if (!r.profile) continue;
    out.push('');
    out.push(`${r.scenario} on rtmpd, ${formatProfile(r.profile)}`);
  }
}

/** A blank line, a title and a table, unless there are no rows. */
function titledTable(out: string[], title: string, header: string[], rows: string[][]): void {
  if (rows.length === 0) return;
  out.push('', title, table(header, rows));
}

/** Writes results-<timestamp>.json and .svg, and latest.json and latest.svg; returns the first two paths. */
export function writeReport(report: BenchReport, dir: string): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const svg = renderChart(report);
  const base = join(dir, `results-${report.startedAt.replace(/[:.]/g, '-')}`);
  writeFileSync(`${base}.json`, json);
  writeFileSync(`${base}.svg`, svg);
  writeFileSync(join(dir, 'latest.json'), json);
  writeFileSync(join(dir, 'latest.svg'), svg);
  return { json: `${base}.json`, svg: `${base}.svg` };
}
