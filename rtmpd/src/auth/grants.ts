// A session admitted by a credential that can be withdrawn (a stream key's
// secret) holds a grant: the admission lease the session attaches to. When
// the credential goes, the grant ends the session through what it attached.
import type { AdmissionLease } from '../rtmp/server/admission.ts';

export class Grant implements AdmissionLease {
  readonly key: string;
  readonly secret: string;
  private end: (() => void) | undefined;
  private revoked = false;
  private released = false;
  private readonly onRelease: (grant: Grant) => void;

  constructor(key: string, secret: string, onRelease: (grant: Grant) => void) {
    this.key = key;
    this.secret = secret;
    this.onRelease = onRelease;
  }

  attach(end: () => void): void {
    if (this.released) return;
    // Revoked while the session was being set up: it ends as soon as it is live.
    if (this.revoked) end();
    else this.end = end;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.end = undefined;
    this.onRelease(this);
  }

  /** Ends the session (once), if it is still live. */
  revoke(): void {
    if (this.released || this.revoked) return;
    this.revoked = true;
    this.end?.();
  }
}

/** The grants one key store has handed out and not yet seen released. */
export class Grants {
  private readonly live = new Set<Grant>();

  issue(key: string, secret: string): Grant {
    const grant = new Grant(key, secret, (g) => this.live.delete(g));
    this.live.add(grant);
    return grant;
  }

  /** Revokes every grant `stillValid` rejects; returns how many. */
  revokeWhere(stillValid: (grant: Grant) => boolean): number {
    let revoked = 0;
    for (const grant of [...this.live]) {
      if (stillValid(grant)) continue;
      this.live.delete(grant);
      grant.revoke();
      revoked++;
    }
    return revoked;
  }

  get size(): number {
    return this.live.size;
  }
}
