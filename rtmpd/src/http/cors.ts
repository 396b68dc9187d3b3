// Cross-origin access for browser pages served elsewhere (a dashboard, a
// player page): the API is read and called with a bearer token, never with
// cookies, so any origin may be allowed without handing it a session.
import type { Context, Next } from 'koa';

const ALLOW_METHODS = 'GET, HEAD, PUT, DELETE, OPTIONS';
/** When the preflight names none: what the API and players send. */
const ALLOW_HEADERS = 'Authorization, Content-Type, Range';
/** How long a browser may reuse a preflight answer. */
const MAX_AGE_SECONDS = '600';

/**
 * Answers CORS preflights (an OPTIONS with Access-Control-Request-Method) on
 * every path with 204 before authorization sees them (a browser sends no
 * credentials with a preflight), allowing whatever request headers they
 * name, and marks every other response readable from any origin.
 */
export async function cors(ctx: Context, next: Next): Promise<void> {
  ctx.set('Access-Control-Allow-Origin', '*');
  if (ctx.method === 'OPTIONS' && ctx.get('Access-Control-Request-Method')) {
    ctx.set({
      'Access-Control-Allow-Methods': ALLOW_METHODS,
      'Access-Control-Allow-Headers': ctx.get('Access-Control-Request-Headers') || ALLOW_HEADERS,
      'Access-Control-Max-Age': MAX_AGE_SECONDS,
    });
    ctx.status = 204;
    return;
  }
  await next();
}
