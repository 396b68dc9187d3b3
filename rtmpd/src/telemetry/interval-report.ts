// A warning that repeats at a stream's frame or GOP rate (an encoder's bad
// packets, a disk slower than the stream) would write a line each time, per
// stream, for as long as the fault lasts. An IntervalReport lets the first
// through at once, then at most one an interval, and each line it lets
// through says how many there were since the last one (itself included).

/** How often a stream's repeated warning is written: a line a minute per stream. */
export const REPEATED_WARNING_INTERVAL_MS = 60_000;

export class IntervalReport {
  private readonly intervalMs: number;
  /** Since the last report, this one included. */
  private count = 0;
  private reportedAt = -Infinity;

  constructor(intervalMs = REPEATED_WARNING_INTERVAL_MS) {
    this.intervalMs = intervalMs;
  }

  /**
   * Counts one at `now` (ms, performance.now()): how many to report (this one
   * and those not reported since the last report), or 0 when its interval
   * has not passed and nothing is to be written.
   */
  take(now: number): number {
    this.count++;
    if (now - this.reportedAt < this.intervalMs) return 0;
    const count = this.count;
    this.count = 0;
    this.reportedAt = now;
    return count;
  }
}
