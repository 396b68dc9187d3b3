import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { Logger } from '../telemetry/logger.ts';

/** An error the API answers with its own status and a stable, machine-readable code. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * A 401 with its RFC 6750 challenge, which every 401 carries: the realm, and
 * `error="invalid_token"` when the request did present a token but a bad one.
 */
export const unauthorized = (code: string, message: string, o: { realm?: string; invalidToken?: boolean } = {}): ApiError =>
  new ApiError(401, code, message, {
    'WWW-Authenticate': `Bearer realm="${o.realm ?? 'rtmpd'}"${o.invalidToken ? ', error="invalid_token"' : ''}`,
  });

/** The body of every error answer: `code` is stable and machine-readable, `message` says what to do. */
export const errorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

const errorBody = (code: string, message: string): z.infer<typeof errorBodySchema> => ({ error: { code, message } });

/**
 * Every failure leaves as JSON `{"error":{"code","message"}}` with its status;
 * unexpected errors are logged with their stack and answered with a generic
 * 500, never the stack itself. Routes nobody matched become a JSON 404, and
 * the routers' 405 (a method the path does not take, whatever the method:
 * see routerFor) JSON too.
 */
export function jsonErrors(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.body === undefined && ctx.respond !== false) {
        if (ctx.status === 404) throw new ApiError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
        // The router's answer to a method the path does not take, with the Allow header that names those it does.
        if (ctx.status === 405)
          throw new ApiError(405, 'method_not_allowed', `${ctx.path} takes ${ctx.response.get('Allow')}, not ${ctx.method}`);
      }
    } catch (err) {
      if (ctx.headerSent || ctx.respond === false) {
        logger.warn({ err, path: ctx.path }, 'error after the response started');
        return;
      }
      const api = toApiError(err);
      if (api.status >= 500 && !(err instanceof ApiError)) logger.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = api.status;
      ctx.set(api.headers);
      ctx.body = errorBody(api.code, api.message);
    }
  };
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  // Koa raises http-errors (400 on a malformed URL) with `expose` set for 4xx.
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose) {
    return new ApiError(status, 'bad_request', (err as Error).message);
  }
  return new ApiError(500, 'internal_error', 'internal server error');
}
