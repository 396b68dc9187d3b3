// What rtmpd's longest event-loop turns ran, for a join storm: loaded into
// rtmpd (RTMPD_NODE_FLAGS=--import=<this file>), a 10 ms interval timer
// measures each gap between two runs of the timers phase (a gap far longer
// than 10 ms is one turn of the loop, in practice one long poll phase) and
// counts what ran meanwhile: HTTP requests started, writes handed to TCP
// handles and their bytes (rtmpd's own handle writes and net.Socket's alike),
// the garbage collector's time, the process's CPU time. At exit it writes
// the 12 longest gaps, a histogram of all of them and the peak RSS to
// LOOP_TURNS_OUT as JSON.
//   RTMPD_NODE_FLAGS=--import=$PWD/hack/bench/loop-turns.ts LOOP_TURNS_OUT=/tmp/turns.json \
//     flock /tmp/flux-bench.lock node --conditions=source hack/bench/join-storm.ts --players 2000
import dc from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';

interface Counts {
  requests: number;
  writes: number;
  writeBytes: number;
  gcMs: number;
}

interface TcpPrototype {
  writeBuffer(this: unknown, request: object, bytes: Uint8Array): number;
  writev(this: unknown, request: object, chunks: (Uint8Array | string)[], allBuffers: boolean): number;
}

const out = process.env.LOOP_TURNS_OUT ?? `loop-turns-${process.pid}.json`;
const zero = (): Counts => ({ requests: 0, writes: 0, writeBytes: 0, gcMs: 0 });
let counts = zero();

dc.subscribe('http.server.request.start', () => counts.requests++);

const tcp = (process as unknown as { binding(name: string): { TCP: { prototype: TcpPrototype } } }).binding('tcp_wrap').TCP.prototype;
const { writeBuffer, writev } = tcp;
tcp.writeBuffer = function (request, bytes) {
  counts.writes++;
  counts.writeBytes += bytes.length;
  return writeBuffer.call(this, request, bytes);
};
tcp.writev = function (request, chunks, allBuffers) {
  counts.writes++;
  for (let i = 0; i < chunks.length; i += allBuffers ? 1 : 2) counts.writeBytes += chunks[i]!.length;
  return writev.call(this, request, chunks, allBuffers);
};

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) counts.gcMs += entry.duration;
}).observe({ entryTypes: ['gc'] });

const BOUNDS_MS = [50, 200, 1000, 3000, 10_000, 30_000, Infinity];
const histogram = BOUNDS_MS.map(() => 0);
const longest: (Counts & { at: string; gapMs: number; cpuMs: number })[] = [];
let maxRss = 0;
let last = performance.now();
let lastCpu = process.cpuUsage();
setInterval(() => {
  maxRss = Math.max(maxRss, process.memoryUsage.rss());
  const gapMs = performance.now() - last;
  const cpu = process.cpuUsage(lastCpu);
  histogram[BOUNDS_MS.findIndex((bound) => gapMs < bound)]!++;
  const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  longest.push({ at: new Date().toISOString(), gapMs: Math.round(gapMs), cpuMs, ...counts, gcMs: Math.round(counts.gcMs) });
  longest.sort((a, b) => b.gapMs - a.gapMs);
  longest.length = Math.min(longest.length, 12);
  counts = zero();
  last = performance.now();
  lastCpu = process.cpuUsage();
}, 10).unref();

process.on('exit', () => {
  const gapsUnderMs = Object.fromEntries(BOUNDS_MS.map((bound, i) => [String(bound), histogram[i]]));
  writeFileSync(out, `${JSON.stringify({ maxRssMiB: Math.round(maxRss / 1048576), gapsUnderMs, longest }, null, 1)}\n`);
});
