import type { RouterContext } from '@koa/router';
import { z } from 'zod';
import type { Authorizer } from '../auth/authorizer.ts';
import { MAX_REVOCATIONS, type Revocation } from '../auth/revocations.ts';
import { streamId } from '../hub/names.ts';
import { ApiError } from './errors.ts';
import { noQuery, wholeNumber } from './query.ts';
import type { Router } from './required-modules.ts';
import { routerFor, type RouteGroup } from './routing.ts';
import { byStreamId, STREAM_ID_PARAMS, streamIdOf } from './streams-api.ts';

const secondsQuery = z.object({
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

const REVOCATIONS = '/api/v1/auth/revocations';

/**
 * Revoked stream keys under /api/v1/auth/revocations: PUT one (its live
 * publisher ends and no one may publish it until the revocation expires,
 * is lifted, or rtmpd restarts), GET the list, DELETE to lift. The ids are
 * stream ids, as in the streams API. Every route needs an API token
 * (auth/http-access.ts).
 */
export const REVOCATION_ROUTES = {
  list: {
    method: 'get',
    paths: [REVOCATIONS],
    summary: 'The revoked stream keys',
    access: 'token',
    query: noQuery,
    ok: { 200: { description: 'The revocations', json: revocationListSchema } },
  },
  put: {
    method: 'put',
    paths: byStreamId(REVOCATIONS),
    params: STREAM_ID_PARAMS,
    summary: 'Revoke a stream key (for `seconds`, else until lifted or restart); its publisher ends',
    access: 'token',
    query: secondsQuery,
    ok: { 200: { description: 'The revocation', json: revocationViewSchema } },
    errors: { 400: ['invalid_stream_id'], 409: ['too_many_revocations'] },
  },
  lift: {
    method: 'delete',
    paths: byStreamId(REVOCATIONS),
    params: STREAM_ID_PARAMS,
    summary: 'Lift a revocation',
    access: 'token',
    query: noQuery,
    ok: { 204: { description: 'Lifted', empty: true } },
    errors: { 400: ['invalid_stream_id'], 404: ['revocation_not_found'] },
  },
} satisfies RouteGroup;

export function revocationsApi(authorizer: Authorizer): Router {
  const target = (ctx: RouterContext) => {
    const [, app = '', key = ''] = streamIdOf(ctx.params).split('/');
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

  return routerFor(REVOCATION_ROUTES, {
    list: (ctx) => {
      const answer: z.infer<typeof revocationListSchema> = { revocations: authorizer.listRevocations().map(view) };
      ctx.body = answer;
    },
    put,
    lift,
  });
}
