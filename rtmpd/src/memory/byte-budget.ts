/** What an owner takes the bytes it holds from, and gives them back to. */
export interface Budget {
  /** Takes `bytes` if the budget stays at or under its limit; false (nothing taken) otherwise. */
  take(bytes: number): boolean;
  give(bytes: number): void;
}

/**
 * Bytes that many owners hold at once (the RTMP messages still arriving on
 * every connection), up to a limit for the whole process: what no single
 * connection's own bound can cap when a client opens many connections.
 */
export class ByteBudget implements Budget {
  readonly limit: number;
  /** Bytes taken and not yet given back. */
  held = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  take(bytes: number): boolean {
    if (this.held + bytes > this.limit) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}

/**
 * A ByteBudget of which the connections of one client address (its key,
 * connections/per-address.ts) may hold at most a share, so that one host
 * cannot take all of it from the others. `share` is read at each take (it
 * follows a live setting); Infinity for no share.
 */
export class SharedByAddress {
  readonly budget: ByteBudget;
  private readonly share: () => number;
  private readonly held = new Map<string, number>();

  constructor(budget: ByteBudget, share: () => number) {
    this.budget = budget;
    this.share = share;
  }

  /** The budget as the connections of `key` take from it. */
  of(key: string): Budget {
    return { take: (bytes) => this.take(key, bytes), give: (bytes) => this.give(key, bytes) };
  }

  private take(key: string, bytes: number): boolean {
    const held = this.held.get(key) ?? 0;
    if (held + bytes > this.share() || !this.budget.take(bytes)) return false;
    this.held.set(key, held + bytes);
    return true;
  }

  private give(key: string, bytes: number): void {
    this.budget.give(bytes);
    const held = this.held.get(key)! - bytes;
    if (held === 0) this.held.delete(key);
    else this.held.set(key, held);
  }
}
