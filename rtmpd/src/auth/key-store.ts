// The `keys` method: each stream key has its own secrets, and a publisher or
// player names the key in the URL and proves it with `?secret=`:
// rtmp://host/live/cam1?secret=s3cr3t (OBS: Stream Key `cam1?secret=s3cr3t`).
// The store is a YAML/JSON file (`cam1: s3cr3t`, or a list for rotation) or
// a directory with one file per key (a mounted Secret whose data keys are the
// stream keys). Removing or changing a key's secret ends the sessions it
// admitted, within one poll.
import { lines, SecretPathError, type Entries } from '../secrets/mounted.ts';
import { parseYaml } from '../yaml.ts';
import { z } from 'zod';
import { matchesAny } from './safe-equal.ts';

export const SECRET_PARAM = 'secret';
/** The longest secret a key may have (auth/credentials.ts refuses longer ones as malformed). */
export const MAX_SECRET_LENGTH = 1024;
const secret = z.string().min(1).max(MAX_SECRET_LENGTH);

/** Stream key → its valid secrets. */
export type Keys = ReadonlyMap<string, readonly string[]>;

const fileSchema = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'not a valid stream key'),
  z.union([secret, z.array(secret).min(1)]),
);

export function parseKeys(entries: Entries): Keys {
  const file = entries.get('');
  if (file !== undefined && entries.size === 1) {
    let raw: unknown;
    try {
      raw = parseYaml(file) ?? {};
    } catch (err) {
      throw new SecretPathError(`the key file is not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const message = issue?.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue?.message;
      throw new SecretPathError(`the key file must map stream key: secret (${issue?.path.join('.') || 'top level'}: ${message})`);
    }
    return new Map(Object.entries(parsed.data).map(([key, secrets]) => [key, (Array.isArray(secrets) ? secrets : [secrets]).map(String)]));
  }
  const keys = new Map<string, string[]>();
  for (const [name, text] of entries) {
    const secrets = lines(text);
    if (secrets.some((s) => !secret.safeParse(s).success))
      throw new SecretPathError(`key ${name}: a secret is longer than ${MAX_SECRET_LENGTH} characters`);
    if (secrets.length > 0) keys.set(name, secrets);
  }
  return keys;
}

/** Whether `secret` is one of `key`'s secrets; an unknown key costs the same comparison as a known one. */
export function keyAccepts(keys: Keys, key: string, secret: string): boolean {
  return matchesAny(secret, keys.get(key) ?? ['']) && keys.has(key);
}
