// Standard Webhooks signatures (https://www.standardwebhooks.com): each
// request carries webhook-id, webhook-timestamp and webhook-signature, the
// last `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per key
// separated by spaces, so a receiver can rotate keys without missing events.
import { createHmac } from 'node:crypto';
import { lines, SecretPathError, type Entries } from '../secrets/mounted.ts';

const PREFIX = 'whsec_';

/** The signing keys of a secret file: one per line, `whsec_<base64>` (decoded) or any other text (used as its bytes). */
export function parseSigningKeys(entries: Entries): Buffer[] {
  const text = entries.get('');
  if (text === undefined) throw new SecretPathError('it must be a file, not a directory');
  const keys = lines(text).map((line) => (line.startsWith(PREFIX) ? Buffer.from(line.slice(PREFIX.length), 'base64') : Buffer.from(line)));
  if (keys.length === 0 || keys.some((key) => key.length === 0)) throw new SecretPathError('it holds no usable key');
  return keys;
}

/** The webhook-signature header for one attempt. */
export function signatureHeader(keys: readonly Buffer[], id: string, timestamp: number, body: string): string {
  const signed = `${id}.${timestamp}.${body}`;
  return keys.map((key) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`).join(' ');
}
