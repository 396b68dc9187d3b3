// /metrics behind the API server's authentication and authorization, as
// controller-runtime's secure metrics and kube-rbac-proxy do it: the bearer
// token is reviewed (TokenReview), and the user it names must be allowed `get`
// on the non-resource URL /metrics (SubjectAccessReview). Answers are cached
// briefly, so a scrape every few seconds costs the API server nothing.
import { createHash } from 'node:crypto';
import type { AuthenticationV1Api, AuthorizationV1Api } from '@kubernetes/client-node';

interface Refusal {
  code: 401 | 403;
  /** The refusal's stable, machine-readable name, as rtmpd's API names its own 401s and 403s. */
  error: 'unauthorized' | 'bad_token' | 'forbidden';
  /** Why the request is refused, for the JSON body. */
  message: string;
  /** With a 401: the WWW-Authenticate challenge (RFC 6750). */
  challenge?: string;
}

export type AuthResult = { code: 200 } | Refusal;

const realm = 'Bearer realm="rtmpd-operator"';

export interface MetricsAuthOptions {
  authn: AuthenticationV1Api;
  authz: AuthorizationV1Api;
  /** How long an answer is reused (allowed and refused alike). */
  ttlMs?: number;
  /** Tokens remembered at most; the oldest is forgotten first. */
  maxEntries?: number;
  now?: () => number;
}

export class MetricsAuth {
  readonly #o: MetricsAuthOptions;
  readonly #cache = new Map<string, { result: AuthResult; expires: number }>();

  constructor(opts: MetricsAuthOptions) {
    this.#o = opts;
  }

  /** Whether a request with this Authorization header may read `path`. */
  async check(authorization: string | undefined, path: string): Promise<AuthResult> {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token)
      return {
        code: 401,
        error: 'unauthorized',
        message: 'a bearer token is required (Authorization: Bearer <ServiceAccount token>)',
        challenge: realm,
      };
    const now = this.#o.now?.() ?? Date.now();
    // The token itself is not kept in memory, only its digest.
    const key = `${createHash('sha256').update(token).digest('hex')} ${path}`;
    const cached = this.#cache.get(key);
    if (cached && cached.expires > now) return cached.result;
    const result = await this.#review(token, path);
    this.#cache.delete(key);
    this.#cache.set(key, { result, expires: now + (this.#o.ttlMs ?? 60_000) });
    const max = this.#o.maxEntries ?? 1024;
    for (const k of this.#cache.keys()) {
      if (this.#cache.size <= max) break;
      this.#cache.delete(k);
    }
    return result;
  }

  async #review(token: string, path: string): Promise<AuthResult> {
    const review = await this.#o.authn.createTokenReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
    });
    const user = review.status?.user;
    if (!review.status?.authenticated || !user?.username)
      return {
        code: 401,
        error: 'bad_token',
        message: `the token was not accepted by the API server${review.status?.error ? `: ${review.status.error}` : ''}`,
        challenge: `${realm}, error="invalid_token"`,
      };
    const access = await this.#o.authz.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          uid: user.uid,
          groups: user.groups,
          extra: user.extra,
          nonResourceAttributes: { path, verb: 'get' },
        },
      },
    });
    if (access.status?.allowed) return { code: 200 };
    return {
      code: 403,
      error: 'forbidden',
      message: `${user.username} may not get ${path}${access.status?.reason ? ` (${access.status.reason})` : ''}: bind it to a role allowing get on the non-resource URL ${path}`,
    };
  }
}
