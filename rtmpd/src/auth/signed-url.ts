// The `signed` method: a URL carries its own permission, minted with a secret
// the server shares (`npx rtmpd sign`): `?exp=<unix seconds>&sig=<HMAC>`,
// optionally bound to the client's address with `&ip=<address>`. The HMAC is
// SHA-256 over the action, app, key, expiry and address, so a play link does
// not publish, and one stream's link opens no other. The parameters may sit
// in the stream name's query (rtmp://host/live/cam1?exp=..&sig=..) or in
// the tcUrl's (OBS Server rtmp://host/live?exp=..&sig=.., Stream Key cam1).
import { createHmac } from 'node:crypto';
import { readCredentials } from './credentials.ts';
import type { AuthAction } from './rules.ts';
import { safeEqual } from './safe-equal.ts';

export interface SignedClaims {
  action: AuthAction;
  app: string;
  key: string;
  /** Unix seconds after which the URL no longer admits. */
  expires: number;
  /** The only client address the URL admits, when bound to one. */
  ip?: string;
}

const message = (c: SignedClaims): string => [c.action, c.app, c.key, String(c.expires), c.ip ?? ''].join('\n');

function signature(secret: string, claims: SignedClaims): string {
  return createHmac('sha256', secret).update(message(claims)).digest('base64url');
}

/** The query a signed URL carries: exp, ip when bound, sig. */
export function signedQuery(secret: string, claims: SignedClaims): string {
  const params = new URLSearchParams({ exp: String(claims.expires) });
  if (claims.ip) params.set('ip', claims.ip);
  params.set('sig', signature(secret, claims));
  return params.toString();
}

export type SignedVerdict = 'ok' | 'missing_credentials' | 'bad_signature' | 'expired' | 'address_mismatch';

export interface SignedRequest {
  action: AuthAction;
  app: string;
  key: string;
  params: URLSearchParams;
  clientIp: string;
  nowSeconds: number;
}

/** Checks a request's exp/ip/sig against every current secret (rotation keeps old links valid until they expire). */
export function verifySigned(secrets: readonly string[], request: SignedRequest): SignedVerdict {
  if (!request.params.has('exp') || !request.params.has('sig')) return 'missing_credentials';
  const read = readCredentials(request.params, 'exp', 'ip', 'sig');
  if (!read.ok) return 'bad_signature';
  const { exp, ip, sig } = read.credentials;
  const claims: SignedClaims = { action: request.action, app: request.app, key: request.key, expires: Number(exp), ...(ip ? { ip } : {}) };
  let valid = false;
  for (const secret of secrets) valid = safeEqual(sig!, signature(secret, claims)) || valid;
  if (!valid) return 'bad_signature';
  if (claims.expires < request.nowSeconds) return 'expired';
  if (ip !== undefined && ip !== request.clientIp) return 'address_mismatch';
  return 'ok';
}
