// A work queue with client-go's semantics: a key is queued at most once
// (de-duplication), a key being processed is never handed to a second worker
// (if it is added meanwhile, it is queued again when done), and failing keys
// come back after a per-key exponential backoff.
import { noQueueMetrics, type QueueMetrics } from './metrics.ts';

export interface WorkQueueOptions {
  /** First retry delay (client-go: 5 ms). */
  baseDelayMs?: number;
  /** Longest retry delay (client-go: 1000 s). */
  maxDelayMs?: number;
  metrics?: QueueMetrics;
}

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Map<string, number>();
  readonly #addedAt = new Map<string, number>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #metrics: QueueMetrics;
  #shuttingDown = false;
  #unfinishedTimer: NodeJS.Timeout;

  constructor(opts: WorkQueueOptions = {}) {
    this.#baseDelayMs = opts.baseDelayMs ?? 5;
    this.#maxDelayMs = opts.maxDelayMs ?? 1_000_000;
    this.#metrics = opts.metrics ?? noQueueMetrics;
    this.#unfinishedTimer = setInterval(() => this.#reportUnfinished(), 1000).unref();
  }

  get length(): number {
    return this.#queue.length;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Queues a key unless it is already queued. */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#metrics.add();
    this.#dirty.add(key);
    this.#addedAt.set(key, performance.now());
    if (this.#processing.has(key)) return; // re-queued by done()
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#hand(key, waiter);
      return;
    }
    this.#queue.push(key);
    this.#metrics.depth(this.#queue.length);
  }

  /** Queues a key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    this.#timers.set(key, { at, timer });
  }

  /** Queues a key after its exponential backoff: base·2^failures, capped. */
  addRateLimited(key: string): void {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    this.#metrics.retry();
    this.addAfter(key, this.backoff(failures));
  }

  /** The delay the n-th consecutive failure waits. */
  backoff(failures: number): number {
    return Math.min(this.#baseDelayMs * 2 ** Math.min(failures, 60), this.#maxDelayMs);
  }

  /** Consecutive failures recorded for a key. */
  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Clears a key's backoff after it succeeded. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /**
   * The next key to process, or undefined once the queue shuts down. Unlike
   * client-go's, a queue that shuts down is not drained: our reconciles have
   * no context to cancel, so a stopping operator would otherwise work through
   * every queued key (all of them after a resync) before it exits.
   */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#metrics.depth(this.#queue.length);
      return new Promise((resolve) => this.#hand(key, resolve));
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks a key processed; if it was added meanwhile it is queued again. */
  done(key: string): void {
    const started = this.#processing.get(key);
    if (started !== undefined) this.#metrics.worked((performance.now() - started) / 1000);
    this.#processing.delete(key);
    if (!this.#dirty.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter) this.#hand(key, waiter);
    else {
      this.#queue.push(key);
      this.#metrics.depth(this.#queue.length);
    }
  }

  /** Stops handing out keys; waiting getters receive undefined. */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    clearInterval(this.#unfinishedTimer);
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }

  #hand(key: string, to: (key: string) => void): void {
    this.#dirty.delete(key);
    this.#processing.set(key, performance.now());
    const added = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (added !== undefined) this.#metrics.queued((performance.now() - added) / 1000);
    to(key);
  }

  #reportUnfinished(): void {
    const now = performance.now();
    let total = 0;
    let longest = 0;
    for (const started of this.#processing.values()) {
      total += (now - started) / 1000;
      longest = Math.max(longest, (now - started) / 1000);
    }
    this.#metrics.unfinished(total, longest);
  }
}
