/**
 * Bytes that many owners hold at once (the RTMP messages still arriving on
 * every connection), up to a limit for the whole process: what no single
 * connection's own bound can cap when a client opens many connections.
 */
export class ByteBudget {
  readonly limit: number;
  /** Bytes taken and not yet given back. */
  held = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Takes `bytes` if the budget stays at or under its limit. */
  take(bytes: number): boolean {
    if (this.held + bytes > this.limit) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}
