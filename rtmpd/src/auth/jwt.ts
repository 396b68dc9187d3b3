// The `jwt` method: a JSON Web Token in the stream name's or tcUrl's query
// (`?jwt=<token>`) or, over HTTP, in `Authorization: Bearer`. It is verified
// against a JWKS URL or a static key (jose), must carry `exp`, and says what
// it allows in its `rtmpd_permissions` claim:
//   [{"action": "publish", "app": "live", "key": "cam-*"}, {"action": "play"}]
// (app and key are patterns, `*` when left out).
import { createRequire } from 'node:module';
import type * as Jose from 'jose';
import type { JSONWebKeySet, JWK, JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { SecretPathError, type Entries } from '../secrets/mounted.ts';
import { ACTIONS, globToRegExp, namePattern, type AuthAction } from './rules.ts';

// jose is loaded when a JWT rule is compiled, not by every rtmpd at start.
const require = createRequire(import.meta.url);
let loaded: typeof Jose | undefined;
const jose = (): typeof Jose => (loaded ??= require('jose') as typeof Jose);

export const JWT_PARAM = 'jwt';
export const PERMISSIONS_CLAIM = 'rtmpd_permissions';

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const SYMMETRIC = ['HS256', 'HS384', 'HS512'];

/** How a token's signature is checked: a key getter and the algorithms it may be signed with. */
export interface JwtKey {
  key: JWTVerifyGetKey | Uint8Array;
  algorithms: string[];
}

export function remoteJwtKey(url: string): JwtKey {
  // A kid the cached set does not know refetches at most every 30 s (jose's cooldown); a fetch waits 2 s at most.
  return { key: jose().createRemoteJWKSet(new URL(url), { timeoutDuration: 2000 }), algorithms: ASYMMETRIC };
}

/** A key file: a JWKS or JWK (JSON), a PEM public key, or else an HMAC secret. */
export function parseJwtKey(entries: Entries): JwtKey {
  const text = [...entries.values()][0]?.trim() ?? '';
  if (text === '') throw new SecretPathError('the JWT key file is empty');
  if (text.startsWith('{')) {
    let json: JSONWebKeySet | JWK;
    try {
      json = JSON.parse(text) as JSONWebKeySet | JWK;
    } catch (err) {
      throw new SecretPathError(`the JWT key file is not valid JSON: ${(err as Error).message}`);
    }
    if ('keys' in json && Array.isArray(json.keys)) return { key: jose().createLocalJWKSet(json), algorithms: ASYMMETRIC };
    // One key: used whatever kid the token names.
    const jwk = json as JWK;
    return { key: async (header) => jose().importJWK(jwk, jwk.alg ?? header.alg), algorithms: ASYMMETRIC };
  }
  if (text.startsWith('-----BEGIN PUBLIC KEY-----')) {
    return { key: async (header) => jose().importSPKI(text, header.alg ?? ''), algorithms: ASYMMETRIC };
  }
  return { key: new TextEncoder().encode(text), algorithms: SYMMETRIC };
}

const permissionsSchema = z
  .array(z.object({ action: z.enum(ACTIONS), app: namePattern.default('*'), key: namePattern.default('*') }))
  .max(100);

export type JwtVerdict = 'ok' | 'missing_credentials' | 'bad_token' | 'expired' | 'not_permitted' | 'key_unavailable';

export interface JwtRequest {
  action: AuthAction;
  app: string;
  key: string;
  token: string | undefined;
}

export async function verifyJwt(
  jwtKey: JwtKey,
  options: { issuer?: string | undefined; audience?: string | undefined },
  request: JwtRequest,
): Promise<JwtVerdict> {
  if (!request.token) return 'missing_credentials';
  const { jwtVerify, errors } = jose();
  let payload;
  try {
    ({ payload } = await jwtVerify(request.token, jwtKey.key as JWTVerifyGetKey, {
      algorithms: jwtKey.algorithms,
      requiredClaims: ['exp'],
      ...(options.issuer ? { issuer: options.issuer } : {}),
      ...(options.audience ? { audience: options.audience } : {}),
    }));
  } catch (err) {
    if (err instanceof errors.JWTExpired) return 'expired';
    if (
      err instanceof errors.JWKSTimeout ||
      err instanceof errors.JWKSInvalid ||
      (err instanceof TypeError && !(err instanceof errors.JOSEError))
    )
      return 'key_unavailable';
    return 'bad_token';
  }
  const permissions = permissionsSchema.safeParse(payload[PERMISSIONS_CLAIM]);
  if (!permissions.success) return 'not_permitted';
  const allowed = permissions.data.some(
    (p) => p.action === request.action && globToRegExp(p.app).test(request.app) && globToRegExp(p.key).test(request.key),
  );
  return allowed ? 'ok' : 'not_permitted';
}
