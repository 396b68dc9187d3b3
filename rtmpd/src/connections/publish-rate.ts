/**
 * Publish starts per client address (the key of per-address.ts), as token
 * buckets: each address may start `perMinute` publishes at once and earns
 * them back at that rate. Every publish start can open a recording file and
 * send webhooks, so a client looping publish → unpublish is held to this rate
 * instead of flooding the storage directory; a site of encoders behind one
 * NAT that all start together still fits in the burst.
 */
export class PublishRate {
  /** Addresses whose bucket is not full: a missing address has a full one. */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** Takes one publish start for `key` at `now` (ms); false when its bucket is empty. 0 per minute: no limit. */
  take(key: string, perMinute: number, now: number): boolean {
    if (perMinute <= 0) return true;
    const tokens = this.tokens(key, perMinute, now);
    if (tokens < 1) return false;
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return true;
  }

  /** Forgets addresses whose bucket has filled again, so the map holds only recent publishers. */
  prune(perMinute: number, now: number): void {
    for (const key of this.buckets.keys()) {
      if (perMinute <= 0 || this.tokens(key, perMinute, now) >= perMinute) this.buckets.delete(key);
    }
  }

  private tokens(key: string, perMinute: number, now: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return perMinute;
    return Math.min(perMinute, bucket.tokens + ((now - bucket.at) * perMinute) / 60_000);
  }
}
