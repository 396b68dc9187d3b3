import type { Socket } from 'node:net';

/**
 * Writes to a socket so that everything written in one tick (the packets of
 * one publisher read, a joining player's GOP, a publisher's frame and its
 * audio) leaves in one writev: a syscall per message per player was half the
 * CPU of a fan-out.
 */
export class TickWriter {
  private readonly socket: Socket;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(socket: Socket) {
    this.socket = socket;
  }

  /** Queues bytes for this tick's writev; false once the socket's buffer is full. */
  write(bytes: Buffer): boolean {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    return this.socket.write(bytes);
  }
}
