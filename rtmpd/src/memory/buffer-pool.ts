// Spare buffers by size, for memory that is filled and let go over and over
// (GOP cache blocks, socket write batches). Reused, such buffers do not churn
// the external memory whose growth drives V8's major GCs.

/** How often a pool lets go of the spare buffers it did not need. */
const TRIM_INTERVAL_MS = 10_000;

export class BufferPool {
  private readonly spare = new Map<number, Buffer[]>();
  private spareBytes = 0;
  /** The fewest spare bytes since the last trim: what the load left unused all along. */
  private unusedBytes = 0;
  private trimTimer: NodeJS.Timeout | undefined;
  private readonly maxSpareBytes: number;
  private readonly trimIntervalMs: number;

  constructor(maxSpareBytes: number, trimIntervalMs = TRIM_INTERVAL_MS) {
    this.maxSpareBytes = maxSpareBytes;
    this.trimIntervalMs = trimIntervalMs;
  }

  /** Spare bytes held for reuse. */
  get bytes(): number {
    return this.spareBytes;
  }

  /** A buffer of exactly `size` bytes, spare or new; its contents are arbitrary. */
  take(size: number): Buffer {
    const buffer = this.spare.get(size)?.pop();
    if (buffer === undefined) return Buffer.allocUnsafeSlow(size);
    this.spareBytes -= size;
    if (this.spareBytes < this.unusedBytes) this.unusedBytes = this.spareBytes;
    return buffer;
  }

  /** Keeps `buffer` for a later take() unless the pool is full; nothing may refer to it any more. */
  give(buffer: Buffer): void {
    const size = buffer.length;
    if (this.spareBytes + size > this.maxSpareBytes) return;
    let spare = this.spare.get(size);
    if (spare === undefined) this.spare.set(size, (spare = []));
    spare.push(buffer);
    this.spareBytes += size;
    this.trimTimer ??= setInterval(() => this.trim(), this.trimIntervalMs).unref();
  }

  /**
   * Lets go of as many spare bytes as were never taken since the last trim, so
   * the pool keeps what the load needs: a burst's leftovers go within two
   * intervals, and an idle pool empties (and stops its timer).
   */
  trim(): void {
    let excess = this.unusedBytes;
    for (const [size, spare] of this.spare) {
      while (excess > 0 && spare.length > 0) {
        spare.pop();
        this.spareBytes -= size;
        excess -= size;
      }
    }
    this.unusedBytes = this.spareBytes;
    if (this.spareBytes === 0 && this.trimTimer !== undefined) {
      clearInterval(this.trimTimer);
      this.trimTimer = undefined;
    }
  }
}
