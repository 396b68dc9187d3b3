import { describe, expect, it } from 'vitest';
import { CpuWindow, rssSlopeMiBPerMinute } from './proc.ts';

describe('rssSlopeMiBPerMinute', () => {
  it('is the least-squares growth in MiB per minute', () => {
    const MiB = 2 ** 20;
    // 1 MiB every 30 s, with a point off the line that least squares weighs out: 2 MiB per minute.
    const series = [0, 30, 60, 90].map((seconds) => ({ seconds, bytes: (seconds / 30) * MiB }));
    expect(rssSlopeMiBPerMinute(series)).toBeCloseTo(2, 10);
    series.push({ seconds: 45, bytes: 1.5 * MiB + MiB }, { seconds: 45, bytes: 1.5 * MiB - MiB });
    expect(rssSlopeMiBPerMinute(series)).toBeCloseTo(2, 10);
    expect(rssSlopeMiBPerMinute(series.slice(0, 1))).toBeNaN();
  });
});

describe('CpuWindow', () => {
  it("splits a process's CPU into user and system time, each from its own ticks", () => {
    const window = new CpuWindow(process.pid);
    window.start();
    const until = performance.now() + 300;
    while (performance.now() < until); // user time, hardly any system time
    const use = window.stop();
    // The machine is shared: the spin gets some of a core, not all of it.
    expect(use.userPercent).toBeGreaterThan(10);
    expect(use.systemPercent).toBeGreaterThanOrEqual(0);
    expect(use.systemPercent).toBeLessThan(use.userPercent);
    expect(use.percent).toBeCloseTo(use.userPercent + use.systemPercent, 10);
  });
});
