// Spare buffers by size, for memory that is filled and let go over and over
// (GOP cache blocks, socket write batches). Reused, such buffers do not churn
// the external memory whose growth drives V8's major GCs.
export class BufferPool {
  private readonly spare = new Map<number, Buffer[]>();
  private spareBytes = 0;
  private readonly maxSpareBytes: number;

  constructor(maxSpareBytes: number) {
    this.maxSpareBytes = maxSpareBytes;
  }

  /** A buffer of exactly `size` bytes, spare or new; its contents are arbitrary. */
  take(size: number): Buffer {
    const buffer = this.spare.get(size)?.pop();
    if (buffer === undefined) return Buffer.allocUnsafeSlow(size);
    this.spareBytes -= size;
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
  }
}
