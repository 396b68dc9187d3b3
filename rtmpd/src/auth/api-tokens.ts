// Bearer tokens for the HTTP API: a file (or a mounted Secret's directory)
// of tokens, one per line, re-read while rtmpd runs. Any listed token is
// accepted; several allow rotation without a gap.
import { lines, SecretPathError, type Entries } from '../secrets/mounted.ts';
import { matchesAny } from './safe-equal.ts';

/** Shorter tokens are refused when read: a guessable token protects nothing. */
const MIN_TOKEN_LENGTH = 16;

export function parseTokens(entries: Entries): string[] {
  const tokens = [...entries.values()].flatMap(lines);
  if (tokens.length === 0) throw new SecretPathError('the API token file holds no token');
  const short = tokens.find((t) => t.length < MIN_TOKEN_LENGTH);
  if (short !== undefined) throw new SecretPathError(`API tokens must be at least ${MIN_TOKEN_LENGTH} characters`);
  return tokens;
}

export const tokenAccepted = (tokens: readonly string[], candidate: string): boolean => matchesAny(candidate, tokens);

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerOf(header: string | undefined): string | undefined {
  const match = /^Bearer[ \t]+(\S{1,4096})\s*$/i.exec(header ?? '');
  return match?.[1];
}
