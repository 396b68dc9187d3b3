// The log lines a client's fault makes (a failed handshake, a protocol
// error, a timeout, a bad PROXY header) come one per connection, so a
// scanner or a flood of broken clients would make as many lines as it opens
// connections, each written synchronously (telemetry/logger.ts). A
// FaultLog lets each message through at most LINES_PER_WINDOW times a
// window; the rest are dropped (their metrics count every one), and the
// next line let through says how many of its kind were dropped before it.

/** Lines of one message let through a window. */
const LINES_PER_WINDOW = 10;
const WINDOW_MS = 10_000;

interface Budget {
  windowStart: number;
  written: number;
  dropped: number;
}

export class FaultLog {
  private readonly now: () => number;
  /** By message: as many as the kinds of fault the caller names, a few dozen. */
  private readonly budgets = new Map<string, Budget>();

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
  }

  /**
   * Whether a line with message `msg` may be written now: the fields to add
   * to it (`droppedBefore` when lines of its kind were dropped since the
   * last one), or undefined when it is dropped.
   */
  admit(msg: string): { droppedBefore?: number } | undefined {
    const now = this.now();
    let budget = this.budgets.get(msg);
    if (!budget) this.budgets.set(msg, (budget = { windowStart: now, written: 0, dropped: 0 }));
    if (now - budget.windowStart >= WINDOW_MS) {
      budget.windowStart = now;
      budget.written = 0;
    }
    if (budget.written >= LINES_PER_WINDOW) {
      budget.dropped++;
      return undefined;
    }
    budget.written++;
    const dropped = budget.dropped;
    budget.dropped = 0;
    return dropped > 0 ? { droppedBefore: dropped } : {};
  }
}
