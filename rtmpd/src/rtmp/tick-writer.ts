import type { Socket } from 'node:net';

/** Bytes one flush gathers into the shared scratch buffer; a larger batch (a joining player's GOP) gets a buffer of its own. */
const SCRATCH_BYTES = 256 * 1024;
/**
 * Shared by every writer: a flush copies its parts here and hands the socket
 * one buffer. Writes that the kernel takes at once leave it free for the next
 * flush; one that has to wait keeps it, and a new one takes its place.
 */
let scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);

/**
 * Writes to a socket so that everything written in one tick (the packets of
 * one publisher read, a joining player's GOP, a publisher's frame and its
 * audio) leaves in a single socket.write. Gathering the parts costs a memcpy
 * of bytes the kernel copies anyway; a write per part, or corking and a
 * writev, spent more in Node's stream machinery than the kernel spent
 * sending. Parts are only read during the flush, at the end of the tick, so
 * they may be views of a buffer that is reused after it.
 */
export class TickWriter {
  private readonly socket: Socket;
  private readonly parts: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(socket: Socket) {
    this.socket = socket;
  }

  /** Bytes written but not yet taken by the kernel: this tick's and the socket's backlog. */
  get pendingBytes(): number {
    return this.queuedBytes + this.socket.writableLength;
  }

  /** Queues bytes for this tick's write; they must stay unchanged until the tick ends. */
  write(bytes: Buffer): void {
    this.parts.push(bytes);
    this.queuedBytes += bytes.length;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushScheduled);
    }
  }

  /** The socket's buffer is full: the caller should hold back until it drains. */
  get full(): boolean {
    return this.pendingBytes >= this.socket.writableHighWaterMark;
  }

  /** Ends the connection after what was queued. */
  end(): void {
    this.flush();
    this.socket.end();
  }

  /** Sends what this tick queued now rather than at the end of the tick. */
  flush(): void {
    const { parts, queuedBytes: total } = this;
    if (parts.length === 0) return;
    this.queuedBytes = 0;
    if (this.socket.destroyed) {
      parts.length = 0;
      return;
    }
    if (parts.length === 1) {
      const only = parts[0]!;
      parts.length = 0;
      this.socket.write(only);
      return;
    }
    // The scratch buffer may be used only when no earlier write still points
    // into it. Bytes that must wait are copied: parts may be views of the
    // publisher's read buffer, valid only until this tick ends.
    if (total > SCRATCH_BYTES || this.socket.writableLength > 0) {
      const own = Buffer.concat(parts, total);
      parts.length = 0;
      this.socket.write(own);
      return;
    }
    let pos = 0;
    for (const part of parts) {
      scratch.set(part, pos);
      pos += part.length;
    }
    parts.length = 0;
    this.socket.write(scratch.subarray(0, total));
    if (this.socket.writableLength > 0) scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  }
}
