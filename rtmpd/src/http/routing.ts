// The HTTP routes as data. Each group of routes (streams-api.ts, hls.ts,
// fleet/routes.ts, ...) lists its routes once, next to their handlers:
// method, paths, who may call them, the query schema, the answers. Its Koa
// router is built from that list (routerFor), and `make generate` renders
// the same lists into the OpenAPI document (openapi.ts, which rtmpd never
// loads). A group's handlers are bound to its routes by name, so a route
// without a handler, or a handler that reads another query, does not compile.
import type { RouterContext } from '@koa/router';
import type { Middleware, Next } from 'koa';
import type { z } from 'zod';
import { queryParser } from './query.ts';
import { Router } from './required-modules.ts';

/**
 * Who may call a route (auth/http-access.ts): `open` anyone; `read` anyone
 * unless --api-read-access is `token`; `token` only with an API token;
 * `metrics` by --metrics-access; `play` by the play rules (a player's
 * credentials in the query, or a JWT as its bearer token); `fleet` only the
 * pods of the fleet, with their own token (fleet/routes.ts).
 */
export type Access = 'open' | 'read' | 'token' | 'metrics' | 'play' | 'fleet';

/** An answer's body: JSON by a schema, media of these types, or none. */
export type Body = { json: z.ZodType } | { media: readonly string[] } | { empty: true };

export interface Route {
  method: 'get' | 'put' | 'delete';
  /** As Koa's router has them (`:name` is a path parameter); more than one when a resource has more than one name. */
  paths: readonly string[];
  summary: string;
  access: Access;
  /** What the handler is given, parsed from the query (query.ts). */
  query: z.ZodObject;
  /**
   * Query parameters the route does not name are ignored rather than
   * refused: players and pages add their own (cache busters, their own
   * tokens) to media URLs.
   */
  othersIgnored?: true;
  /** The play rules read a player's credentials from the query too (auth/credentials.ts). */
  playCredentials?: true;
  /** Path parameters with more to say than "a string". */
  params?: Record<string, z.ZodType>;
  ok: Record<number, { description: string } & Body>;
  /** The error codes (errors.ts) each status can carry, besides those every route of its access can. */
  errors?: Record<number, readonly string[]>;
  /** Not for API clients: the OpenAPI document lists it under this tag, marked `x-internal`. */
  internal?: 'fleet (pod to pod)' | 'console';
}

/** A group's routes by the name of their handler; registered in this order. */
export type RouteGroup = Record<string, Route>;

type Handler<Q extends z.ZodObject = z.ZodObject> = (ctx: RouterContext, query: z.output<Q>, next: Next) => unknown;

/** A handler for every route of `G`, given the query its route's schema parses. */
export type Handlers<G extends RouteGroup> = { [Name in keyof G]: Handler<G[Name]['query']> };

/** The router of `group`'s routes; `before` runs ahead of each of its handlers (e.g. a token check). */
export function routerFor<G extends RouteGroup>(group: G, handlers: Handlers<G>, ...before: Middleware[]): Router {
  const router = new Router();
  for (const [name, route] of Object.entries(group)) {
    const parse = queryParser(route.query, route.othersIgnored ? 'ignore' : 'refuse');
    const handler = handlers[name] as Handler;
    const handle = (ctx: RouterContext, next: Next) => handler(ctx, parse(ctx.query), next);
    for (const path of route.paths) router.register(path, [route.method], [...before, handle]);
  }
  return router;
}
