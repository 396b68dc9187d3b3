// Secrets are compared in time that depends on neither value: both sides are
// HMACed with a per-process random key first and the equal-length digests
// compared with timingSafeEqual, so not even the length of a stored secret
// leaks through how fast a guess is refused.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// Made at the first comparison, so a server that never compares one does not load node:crypto at start.
let key: Buffer | undefined;
const digest = (value: string | Buffer): Buffer =>
  createHmac('sha256', (key ??= randomBytes(32)))
    .update(value)
    .digest();

export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Whether `candidate` equals any of `secrets`; every secret is compared, so the position of a match does not show either. */
export function matchesAny(candidate: string, secrets: readonly string[]): boolean {
  let found = false;
  for (const secret of secrets) found = safeEqual(candidate, secret) || found;
  return found;
}
