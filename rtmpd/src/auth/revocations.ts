// Stream keys the API has revoked (or a kick has banned for a while): while
// revoked, no one may publish the key, whatever rule would admit them. Kept
// in memory, per pod: a restart forgets them, so a key that must stay out is
// removed from its key store (or Secret) too.
export interface Revocation {
  app: string;
  key: string;
  /** Epoch milliseconds; undefined: until rtmpd restarts or the revocation is lifted. */
  until: number | undefined;
}

/** Revocations held at once; the API refuses more. */
export const MAX_REVOCATIONS = 10_000;

export class Revocations {
  private readonly byId = new Map<string, Revocation>();

  add(app: string, key: string, seconds: number | undefined, now = Date.now()): Revocation | undefined {
    this.prune(now);
    const id = `${app}/${key}`;
    if (!this.byId.has(id) && this.byId.size >= MAX_REVOCATIONS) return undefined;
    const revocation = { app, key, until: seconds === undefined ? undefined : now + seconds * 1000 };
    this.byId.set(id, revocation);
    return revocation;
  }

  remove(app: string, key: string): boolean {
    return this.byId.delete(`${app}/${key}`);
  }

  has(app: string, key: string, now = Date.now()): boolean {
    const revocation = this.byId.get(`${app}/${key}`);
    if (!revocation) return false;
    if (revocation.until === undefined || revocation.until > now) return true;
    this.byId.delete(`${app}/${key}`);
    return false;
  }

  list(now = Date.now()): Revocation[] {
    this.prune(now);
    return [...this.byId.values()];
  }

  private prune(now: number): void {
    for (const [id, r] of this.byId) if (r.until !== undefined && r.until <= now) this.byId.delete(id);
  }
}
