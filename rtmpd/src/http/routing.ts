// The HTTP routes as data. Each group of routes (streams-api.ts, hls.ts,
// fleet/routes.ts, ...) lists its routes once, next to their handlers:
// method, paths, who may call them, the query schema, the answers. Its Koa
// router is built from that list (routerFor), and `make generate` renders
// the same lists into the OpenAPI document (openapi.ts, which rtmpd never
// loads). A group's handlers are bound to its routes by name, so a route
// without a handler, or a handler that reads another query, does not compile.
// Each route's entry is the one word on who may call it: its router runs the
// check its `access` asks for ahead of its handler.
import type { RouterContext } from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';
import type { z } from 'zod';
import { queryParser } from './query.ts';
import { METHODS, Router } from './required-modules.ts';

/**
 * Who may call a route: `open` anyone; `read` anyone unless
 * --api-read-access is `token`; `token` only with an API token; `metrics` by
 * --metrics-access (these three by auth/http-access.ts's apiAccess); `play`
 * by the play rules (a player's credentials in the query, or a JWT as its
 * bearer token), which its handler asks; `fleet` only the pods of the fleet,
 * with their own token (fleet/routes.ts, in its `before`).
 */
export type Access = 'open' | 'read' | 'token' | 'metrics' | 'play' | 'fleet';

/** The accesses an API token decides. */
export type TokenAccess = Extract<Access, 'read' | 'token' | 'metrics'>;
const TOKEN_ACCESS: ReadonlySet<Access> = new Set<TokenAccess>(['read', 'token', 'metrics']);

/** Refuses (throws) a request a route of `access` may not take; apiAccess puts it in the request's state. */
export type AccessCheck = (ctx: Context, access: TokenAccess) => void;

export interface AccessState {
  checkAccess?: AccessCheck;
}

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

/**
 * The router of `group`'s routes: each runs the check of its access, then
 * `before` (e.g. the fleet's token check), then its handler.
 */
export function routerFor<G extends RouteGroup>(group: G, handlers: Handlers<G>, ...before: Middleware[]): Router {
  // The router counts every method Node's parser lets through as its own
  // (the parser answers any other 400): allowedMethods answers one outside
  // its list 501, a server error for a scanner's TRACE or PROPFIND; within
  // it, a method the path does not take is a 405 with Allow, and a path that
  // is no route stays a 404.
  const router = new Router({ methods: [...METHODS] });
  for (const [name, route] of Object.entries(group)) {
    const parse = queryParser(route.query, route.othersIgnored ? 'ignore' : 'refuse');
    const handler = handlers[name] as Handler;
    const handle = (ctx: RouterContext, next: Next) => handler(ctx, parse(ctx.query), next);
    const checks = TOKEN_ACCESS.has(route.access) ? [requireAccess(route.access as TokenAccess)] : [];
    for (const path of route.paths) router.register(path, [route.method], [...checks, ...before, handle]);
  }
  return router;
}

/** Runs the app's check for `access`; fails closed (a 500) in an app that has none. */
function requireAccess(access: TokenAccess): Middleware {
  return (ctx, next) => {
    const check = (ctx.state as AccessState).checkAccess;
    if (!check) throw new Error(`${ctx.method} ${ctx.path} is a ${access} route, and no access check runs (apiAccess)`);
    check(ctx, access);
    return next();
  };
}

/**
 * Routers built at the first request for a path under `prefix`, from modules
 * loaded then (`load` imports them): until a client asks for one of their
 * paths, their route lists and the zod schemas in them are not in rtmpd's
 * heap. Requests for other paths pass by without loading them, and once
 * loaded they run where this middleware is mounted, each router with its
 * answer to a method a path does not take (the 405 of `mount` in app.ts). A
 * route outside `prefix` would never be reached, so it fails every request
 * under `prefix`; a load that fails is tried again at the next request.
 */
export function lazyRouters(prefix: string, load: () => Promise<readonly Router[]>): LazyRouters {
  let loaded: Promise<Middleware> | undefined;
  const build = (routers: readonly Router[]): Middleware => {
    const paths = routers.flatMap((router) => router.stack.map((layer) => layer.path));
    const outside = paths.find((path) => typeof path !== 'string' || !path.startsWith(prefix));
    if (outside !== undefined) throw new Error(`route ${String(outside)} is outside ${prefix}, where its lazily loaded router serves`);
    lazy.routers = routers;
    return compose(routers.flatMap((router) => [router.routes(), router.allowedMethods()]) as Middleware[]);
  };
  const lazy: LazyRouters = (ctx, next) => {
    if (!ctx.path.startsWith(prefix)) return next();
    loaded ??= load().then(build, (err: unknown) => {
      loaded = undefined;
      throw err;
    });
    return loaded.then((middleware) => middleware(ctx, next));
  };
  return lazy;
}

/** lazyRouters' middleware, which carries its routers once they are loaded (as Router#routes()'s carries its router). */
export type LazyRouters = Middleware & { routers?: readonly Router[] };

/** Aborted when the client goes away while its request waits (for an authorization, a stream, a segment). */
export function abortedBy(ctx: Context): AbortSignal {
  const left = new AbortController();
  ctx.req.once('close', () => left.abort());
  return left.signal;
}
