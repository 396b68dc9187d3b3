// The log lines a client's fault makes (a failed handshake, a protocol
// error, a timeout, a bad PROXY header) come one per connection, so a
// scanner or a flood of broken clients would make as many lines as it opens
// connections, each written synchronously (telemetry/logger.ts). A
// FaultLog writes each message at most LINES_PER_WINDOW times a window; the
// rest are dropped (their metrics count every one), and when the window
// ends, one line says how many of its kind were dropped: whether or not the
// flood goes on, the count is said (an unref'd timer, armed by the window's
// first dropped line).

/** Lines of one message written a window. */
const LINES_PER_WINDOW = 10;
const WINDOW_MS = 10_000;

export type FaultLevel = 'info' | 'warn' | 'error';

/** pino's `(obj, msg)` signature at the levels faults are logged at. */
export type FaultLogger = Record<FaultLevel, (obj: object, msg?: string) => void>;

interface Budget {
  windowStart: number;
  written: number;
  /** Since the last count was said. */
  dropped: number;
}

export class FaultLog {
  private readonly logger: FaultLogger;
  private readonly now: () => number;
  /** By message: as many as the kinds of fault the caller names, a few dozen. */
  private readonly budgets = new Map<string, Budget>();

  constructor(logger: FaultLogger, now: () => number = () => performance.now()) {
    this.logger = logger;
    this.now = now;
  }

  /** Writes `fields` with message `msg` at `level`, unless its window's lines are spent. */
  log(level: FaultLevel, fields: object, msg: string): void {
    const now = this.now();
    let budget = this.budgets.get(msg);
    if (!budget) this.budgets.set(msg, (budget = { windowStart: now, written: 0, dropped: 0 }));
    if (now - budget.windowStart >= WINDOW_MS) {
      budget.windowStart = now;
      budget.written = 0;
    }
    if (budget.written < LINES_PER_WINDOW) {
      budget.written++;
      this.logger[level](fields, msg);
    } else if (budget.dropped++ === 0) {
      setTimeout(() => this.sayDropped(level, msg, budget), budget.windowStart + WINDOW_MS - now).unref();
    }
  }

  private sayDropped(level: FaultLevel, msg: string, budget: Budget): void {
    this.logger[level]({ line: msg, dropped: budget.dropped }, 'fault log lines dropped');
    budget.dropped = 0;
  }
}
