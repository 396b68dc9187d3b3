// What publishers and players prove themselves with, in a query string (the
// stream name's or the tcUrl's over RTMP, the request's over HTTP): one zod
// schema, which the methods parse the parameters they read with (authorizer.ts,
// signed-url.ts) and the OpenAPI document shows on the play routes. Each is
// bounded, so a malformed one is refused as a bad credential of its method
// (403 over HTTP, NetStream.*.Unauthorized over RTMP) before any lookup or
// cryptography.
import { z } from 'zod';
import { JWT_PARAM } from './jwt.ts';
import { MAX_SECRET_LENGTH, SECRET_PARAM } from './key-store.ts';

export const credentialsSchema = z.object({
  [SECRET_PARAM]: z.string().max(MAX_SECRET_LENGTH).optional().describe("the stream's secret, when the rules check one"),
  exp: z
    .string()
    .regex(/^\d{1,12}$/, 'expected Unix seconds')
    .optional()
    .describe("a signed URL's expiry (Unix seconds)"),
  ip: z.union([z.ipv4(), z.ipv6()]).optional().describe('the client address a signed URL is bound to, when it is'),
  sig: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, 'expected an HMAC-SHA256 in base64url')
    .optional()
    .describe("a signed URL's signature (from rtmpd sign)"),
  [JWT_PARAM]: z
    .string()
    .max(8192)
    .regex(/^[A-Za-z0-9_.-]*$/, 'expected a JWT in its compact form')
    .optional()
    .describe('a JWT (over HTTP, or send it as the bearer token)'),
});
export type Credentials = z.infer<typeof credentialsSchema>;

/**
 * The credentials `names` from `params` (the first of each), parsed by the
 * schema; the name of the first malformed one otherwise.
 */
export function readCredentials<N extends keyof Credentials>(
  params: URLSearchParams,
  ...names: N[]
): { ok: true; credentials: Pick<Credentials, N> } | { ok: false; malformed: N } {
  const given = names.flatMap((name) => (params.has(name) ? [[name, params.get(name)] as const] : []));
  const parsed = credentialsSchema.safeParse(Object.fromEntries(given));
  if (parsed.success) return { ok: true, credentials: parsed.data };
  return { ok: false, malformed: parsed.error.issues[0]!.path[0] as N };
}
