// Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the
// most self time, so hot spots can be named without opening DevTools. The
// profile covers the server's whole life (start, connections, players
// joining); only samples of the measured window are counted. Its timestamps
// are CLOCK_MONOTONIC microseconds, the clock of process.hrtime in the bench.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

interface HotFunction {
  /** `name (file:line)` */
  where: string;
  selfMs: number;
  /** Share of the profile's busy (non-idle) time. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  busyMs: number;
  top: HotFunction[];
}

const IDLE = new Set(['(idle)']);

/** Monotonic microseconds (process.hrtime), comparable with a profile's timestamps. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function summarizeProfile(
  file: string,
  window: { startUs: number; endUs: number },
  topN = 25,
  root = process.cwd(),
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, CpuProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute it to the sample after it.
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (at < window.startUs || at > window.endUs) continue;
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const byFunction = new Map<string, number>();
  let totalUs = 0;
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    if (IDLE.has(name)) continue;
    busyUs += us;
    const path = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url || 'native';
    const key = url ? `${name} (${path}:${lineNumber + 1})` : name;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  const top = [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([where, us]) => ({ where, selfMs: us / 1000, percent: busyUs > 0 ? (100 * us) / busyUs : 0 }));
  return { file, totalMs: totalUs / 1000, busyMs: busyUs / 1000, top };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [
    `profile ${s.file}: ${(s.busyMs / 1000).toFixed(1)} s busy of the ${(s.totalMs / 1000).toFixed(1)} s measured; top self time:`,
  ];
  for (const f of s.top) lines.push(`  ${f.percent.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.where}`);
  return lines.join('\n');
}
