export class PoolBusyError extends Error {
  override name = 'PoolBusyError';
}

export interface PoolOptions {
  /** Tasks running at once. */
  concurrency: number;
  /** Tasks waiting for a slot; one more is refused at once. */
  maxQueued: number;
  /** A queued task that has not started after this long is refused. */
  maxWaitMs: number;
}

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

/**
 * Runs at most `concurrency` tasks at once with a bounded, time-limited queue,
 * so a burst of snapshot requests costs a fixed number of ffmpeg processes and
 * the excess is told "busy" instead of piling up.
 */
export class BoundedPool {
  private running = 0;
  private readonly queue: Waiter[] = [];
  private readonly options: PoolOptions;

  constructor(options: PoolOptions) {
    this.options = options;
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.queue.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrency) await this.waitForSlot();
    else this.running++;
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private waitForSlot(): Promise<void> {
    if (this.queue.length >= this.options.maxQueued) return Promise.reject(new PoolBusyError(`${this.queue.length} tasks already waiting`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        // The slot is handed over by release(): `running` stays counted.
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          this.queue.splice(this.queue.indexOf(waiter), 1);
          reject(new PoolBusyError(`no free slot within ${this.options.maxWaitMs} ms`));
        }, this.options.maxWaitMs),
      };
      this.queue.push(waiter);
    });
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next.start();
    else this.running--;
  }
}
