import type { RouterContext } from '@koa/router';
import { z } from 'zod';
import type { Authorizer } from '../auth/authorizer.ts';
import { MAX_REVOCATIONS, type Revocation } from '../auth/revocations.ts';
import { invalidStreamName, streamId } from '../hub/names.ts';
import { ApiError } from './errors.ts';
import { noQuery, wholeNumber, withQuery } from './query.ts';
import { Router } from './required-modules.ts';
import { streamIdOf } from './streams-api.ts';

export const secondsQuery = z.object({
  seconds: wholeNumber(1, 365 * 86_400)
    .optional()
    .describe('how long the revocation lasts; without it, until it is lifted or rtmpd restarts'),
});

/** A revoked stream key; `until` is null for a revocation that lasts until it is lifted or rtmpd restarts. */
export const revocationViewSchema = z.object({
  stream_id: z.string(),
  app: z.string(),
  key: z.string(),
  until: z.iso.datetime().nullable(),
});
export const revocationListSchema = z.object({ revocations: z.array(revocationViewSchema) });

const view = (r: Revocation): z.infer<typeof revocationViewSchema> => ({
  stream_id: streamId(r.app, r.key),
  app: r.app,
  key: r.key,
  until: r.until === undefined ? null : new Date(r.until).toISOString(),
});

/**
 * Revoked stream keys under /api/v1/auth/revocations: PUT one (its live
 * publisher ends and no one may publish it until the revocation expires,
 * is lifted, or rtmpd restarts), GET the list, DELETE to lift. The ids are
 * stream ids, as in the streams API. Every route needs an API token
 * (auth/http-access.ts).
 */
export function revocationsApi(authorizer: Authorizer): Router {
  const router = new Router({ prefix: '/api/v1/auth/revocations' });

  const target = (ctx: RouterContext) => {
    const id = streamIdOf(ctx.params);
    const [, app = '', key = ''] = id.split('/');
    const invalid = invalidStreamName(app, key);
    if (invalid) throw new ApiError(400, 'invalid_stream_id', invalid);
    return { app, key };
  };

  const put = (ctx: RouterContext, { seconds }: z.infer<typeof secondsQuery>) => {
    const { app, key } = target(ctx);
    const revocation = authorizer.revoke(app, key, seconds);
    if (!revocation) throw new ApiError(409, 'too_many_revocations', `at most ${MAX_REVOCATIONS} revocations are kept; lift some first`);
    ctx.body = view(revocation);
  };

  const lift = (ctx: RouterContext) => {
    const { app, key } = target(ctx);
    if (!authorizer.unrevoke(app, key)) throw new ApiError(404, 'revocation_not_found', `${streamId(app, key)} is not revoked`);
    ctx.status = 204;
  };

  router.get(
    '/',
    withQuery(noQuery, (ctx) => {
      const answer: z.infer<typeof revocationListSchema> = { revocations: authorizer.listRevocations().map(view) };
      ctx.body = answer;
    }),
  );
  for (const id of ['/:stream_id', '/rtmp/:app/:key']) {
    router.put(id, withQuery(secondsQuery, put));
    router.delete(id, withQuery(noQuery, lift));
  }
  return router;
}
