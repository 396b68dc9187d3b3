// Authorization on the HTTP side. apiAccess checks bearer tokens for the
// routes whose entry (http/routing.ts) asks for one: `token` routes always
// need one, `read` routes and /metrics (`metrics`) when the config says so.
// authorizeHttpPlay puts an HTTP player (HTTP-FLV, HLS) through the same
// rules as an RTMP one.
import type { Context, Middleware, Next } from 'koa';
import type { Config } from '../config.ts';
import { ApiError, unauthorized } from '../http/errors.ts';
import type { AccessCheck, AccessState, TokenAccess } from '../http/routing.ts';
import type { AdmissionLease } from '../rtmp/server/admission.ts';
import { bearerOf, tokenAccepted } from './api-tokens.ts';
import { isTlsSocket } from '../tls/socket.ts';
import { normalizeIp, type Authorizer } from './authorizer.ts';

export interface ApiAccessOptions {
  config: Pick<Config, 'apiReadAccess' | 'metricsAccess'>;
  /** The accepted tokens now; undefined when no token file is configured. */
  tokens: () => readonly string[] | undefined;
  /** Counts a refused API request by reason. */
  onRefused: (reason: 'missing_token' | 'bad_token' | 'no_token_configured') => void;
}

/** Whether the request presented a valid API token (set by apiAccess). */
export const hasApiToken = (ctx: Context): boolean => (ctx.state as { apiToken?: boolean }).apiToken === true;

/** Whether a route of `access` needs a token now, by the config. */
function tokenNeeded(access: TokenAccess, config: ApiAccessOptions['config']): boolean {
  if (access === 'read') return config.apiReadAccess === 'token';
  if (access === 'metrics') return config.metricsAccess === 'token';
  return true;
}

/** Puts the API-token check in the request's state, for the routes that ask for it (http/routing.ts). */
export function apiAccess(options: ApiAccessOptions): Middleware {
  const checkAccess = accessCheck(options);
  return (ctx: Context, next: Next) => {
    (ctx.state as AccessState).checkAccess = checkAccess;
    return next();
  };
}

/** A bearer token presented must be good (even where none is needed); none at all is refused where one is. */
function accessCheck(options: ApiAccessOptions): AccessCheck {
  return (ctx, access) => {
    const tokens = options.tokens();
    const bearer = bearerOf(ctx.get('authorization') || undefined);
    if (bearer !== undefined) {
      if (!tokens || !tokenAccepted(tokens, bearer)) {
        options.onRefused('bad_token');
        throw unauthorized('bad_token', 'the bearer token is not valid', { invalidToken: true });
      }
      (ctx.state as { apiToken?: boolean }).apiToken = true;
    } else if (tokenNeeded(access, options.config)) {
      if (!tokens) {
        options.onRefused('no_token_configured');
        throw new ApiError(
          403,
          'api_token_not_configured',
          `${ctx.method} ${ctx.path} needs an API token, and rtmpd has none (--api-token-file)`,
        );
      }
      options.onRefused('missing_token');
      throw unauthorized('unauthorized', `${ctx.method} ${ctx.path} needs Authorization: Bearer <API token>`);
    }
  };
}

/**
 * Authorizes an HTTP player of app/key (HTTP-FLV, HLS) by the same rules as
 * RTMP: credentials from the request's query (`?secret=`, `?exp=&sig=`,
 * `?jwt=`) or `Authorization: Bearer <JWT>`. Refused: throws ApiError 401
 * (no credential) or 403 (a bad one) with the reason as its code. Allowed:
 * returns a lease to attach to the player and release when it leaves (HLS,
 * which has no lasting session, releases it at once).
 */
export async function authorizeHttpPlay(
  authorizer: Authorizer,
  ctx: Context,
  stream: { protocol: 'http-flv' | 'hls'; app: string; key: string },
  signal: AbortSignal,
): Promise<AdmissionLease | undefined> {
  const decision = await authorizer.authorize({
    action: 'play',
    ...stream,
    params: new URLSearchParams(ctx.querystring),
    bearer: bearerOf(ctx.get('authorization') || undefined),
    // The peer's address, or the client behind trusted proxies (http/forwarded.ts).
    clientIp: normalizeIp(ctx.ip),
    // The connection itself, not ctx.secure, which a proxy's X-Forwarded-Proto may set.
    tls: isTlsSocket(ctx.req.socket),
    signal,
  });
  if (decision.allow) return decision.lease;
  throw decision.status === 401
    ? unauthorized(decision.reason, decision.message)
    : new ApiError(decision.status, decision.reason, decision.message);
}
