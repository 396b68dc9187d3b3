// Server cost from /proc: CPU ticks and resident memory of a process and all
// its descendants (nginx's master + worker, rtmpd's ffmpeg children).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clockTicks: number | undefined;
/** USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux in practice). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

interface StatLine {
  ppid: number;
  /** utime + cutime: user-space time, own and of reaped children. */
  userTicks: number;
  /** stime + cstime: time in the kernel (system calls, and for loopback TCP the receiver's work too). */
  systemTicks: number;
}

function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3); ppid is field 4, utime..cstime are fields 14-17.
  return {
    ppid: Number(fields[1]),
    userTicks: Number(fields[11]) + Number(fields[13]),
    systemTicks: Number(fields[12]) + Number(fields[14]),
  };
}

/** The pid and every live descendant. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (!stat) continue;
    const list = children.get(stat.ppid);
    if (list) list.push(pid);
    else children.set(stat.ppid, [pid]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** CPU ticks (reaped children included) of the whole tree. */
function treeTicks(root: number): { user: number; system: number } {
  const sum = { user: 0, system: 0 };
  for (const pid of processTree(root)) {
    const stat = readStat(pid);
    sum.user += stat?.userTicks ?? 0;
    sum.system += stat?.systemTicks ?? 0;
  }
  return sum;
}

/** Resident set size of the whole tree in bytes. */
export function treeRss(root: number): number {
  let sum = 0;
  for (const pid of processTree(root)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) sum += Number(m[1]) * 1024;
    } catch {
      // exited between the listing and the read
    }
  }
  return sum;
}

export interface RssPoint {
  /** Since recordSeries() was called. */
  seconds: number;
  bytes: number;
}

/** Samples the tree's RSS every `intervalMs`, keeping the peak and, once asked, a series over time. */
export class RssSampler {
  peak = 0;
  last = 0;
  readonly series: RssPoint[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly root: number;
  private seriesStart = 0;
  private seriesEveryMs = 0;
  private nextPointAt = Infinity;

  constructor(root: number, intervalMs = 250) {
    this.root = root;
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): number {
    this.last = treeRss(this.root);
    if (this.last > this.peak) this.peak = this.last;
    const now = performance.now();
    if (now >= this.nextPointAt) {
      this.series.push({ seconds: (now - this.seriesStart) / 1000, bytes: this.last });
      this.nextPointAt += this.seriesEveryMs;
    }
    return this.last;
  }

  /** From now on, keeps a point every `everyMs`. */
  recordSeries(everyMs: number): void {
    this.seriesStart = performance.now();
    this.seriesEveryMs = everyMs;
    this.nextPointAt = this.seriesStart;
  }

  endSeries(): void {
    this.nextPointAt = Infinity;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export interface CpuUse {
  /** User + system, % of one core. */
  percent: number;
  userPercent: number;
  systemPercent: number;
}

/** CPU of the tree between start() and stop(), as % of one core. */
export class CpuWindow {
  private readonly root: number;
  private startTicks = { user: 0, system: 0 };
  private startAt = 0;

  constructor(root: number) {
    this.root = root;
  }

  start(): void {
    this.startTicks = treeTicks(this.root);
    this.startAt = performance.now();
  }

  stop(): CpuUse {
    const ticks = treeTicks(this.root);
    const scale = 100 / ticksPerSecond() / ((performance.now() - this.startAt) / 1000);
    const userPercent = (ticks.user - this.startTicks.user) * scale;
    const systemPercent = (ticks.system - this.startTicks.system) * scale;
    return { percent: userPercent + systemPercent, userPercent, systemPercent };
  }
}

/** Read and write system calls of one process (`read`, `write` and their vector forms; not `recvfrom` or `sendto`), from /proc/PID/io. */
export interface IoCounts {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
}

export function ioCounts(pid: number): IoCounts {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { reads: field('syscr'), writes: field('syscw'), bytesRead: field('rchar'), bytesWritten: field('wchar') };
}

/** Least-squares slope of a series in MiB per minute: how fast memory grows. */
export function rssSlopeMiBPerMinute(series: RssPoint[]): number {
  const n = series.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (const p of series) {
    sx += p.seconds;
    sy += p.bytes;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of series) {
    sxy += (p.seconds - mx) * (p.bytes - my);
    sxx += (p.seconds - mx) ** 2;
  }
  return ((sxy / sxx) * 60) / 2 ** 20;
}
