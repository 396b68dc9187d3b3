import type { Router } from '@koa/router';
import Koa from 'koa';
import type { Authorizer } from '../auth/authorizer.ts';
import { apiAccess, authorizeHttpPlay, type ApiAccessOptions } from '../auth/http-access.ts';
import type { HlsServer } from '../hls/server.ts';
import type { StreamHub } from '../hub/hub.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import type { Recorder } from '../storage/recorder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { BitrateMeter } from './bitrate.ts';
import { trustedSources } from '../connections/trusted.ts';
import { cors } from './cors.ts';
import { jsonErrors } from './errors.ts';
import { forwardedClient } from './forwarded.ts';
import { hlsRoutes, type HlsRoutesOptions } from './hls.ts';
import { httpFlvRoute } from './http-flv.ts';
import { openapiRoute } from './openapi-route.ts';
import { refuseBody, refuseQuery } from './query.ts';
import { revocationsApi } from './revocations-api.ts';
import type { StreamViewSources } from './stream-view.ts';
import { streamsApi, type FleetStreams } from './streams-api.ts';

export interface HttpAppOptions {
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  /** Serves HLS, and adds each stream's HLS URL and players to the stream API. */
  hls?: HlsServer;
  /** Adds each stream's recording state to the stream API. */
  recorder?: Recorder;
  /** Adds each stream's forwards to the stream API. */
  forwards?: StreamViewSources['forwards'];
  /** Adds each stream's transcode to the stream API, and its renditions to its multivariant playlist. */
  transcodes?: StreamViewSources['transcodes'] & { ladderOf: HlsRoutesOptions['ladderOf'] };
  logger: Logger;
  playWaitMs: number;
  /** Decides HTTP players and carries out kicks and revocations. */
  authorizer: Authorizer;
  /** Who may call the API and /metrics. */
  access: ApiAccessOptions;
  /** More routes (e.g. /metrics), matched before HTTP-FLV. */
  routes?: Router[];
  /** More middleware (e.g. tracing), run after error handling and before the routes. */
  middleware?: Koa.Middleware[];
  /** Whether to take new clients: false while draining, so GET /ready answers 503. */
  ready?: () => boolean;
  /** In a fleet: the streams of every pod (fleet/catalog.ts). */
  fleet?: FleetStreams;
  /** Reverse proxies whose Forwarded and X-Forwarded-For name the client (--http-forwarded-from); none by default. */
  forwardedFrom?: readonly string[];
}

/** The HTTP side of rtmpd: health, the stream API, snapshots, HTTP-FLV, and whatever `routes` adds. */
export function createHttpApp(options: HttpAppOptions): Koa {
  const app = new Koa();
  // First, so that everything after it sees the client behind trusted proxies in ctx.ip.
  if (options.forwardedFrom?.length) app.use(forwardedClient(trustedSources(options.forwardedFrom)));
  app.use(cors);
  app.use(jsonErrors(options.logger));
  for (const middleware of options.middleware ?? []) app.use(middleware);
  // /health: the process works (liveness); /ready: it takes new clients (readiness), until it drains.
  const health = async (ctx: Koa.Context, next: Koa.Next) => {
    if ((ctx.path !== '/health' && ctx.path !== '/ready') || ctx.method !== 'GET') return next();
    refuseQuery(ctx.query);
    const ready = ctx.path === '/health' || (options.ready?.() ?? true);
    ctx.type = 'text/plain';
    ctx.status = ready ? 200 : 503;
    ctx.body = ready ? 'OK' : 'draining';
  };
  app.use(health);
  app.use(apiAccess(options.access));
  app.use(refuseBody);
  const { authorizer } = options;
  const authorizePlay = (protocol: 'http-flv' | 'hls') => (ctx: Koa.Context, app: string, key: string, signal: AbortSignal) =>
    authorizeHttpPlay(authorizer, ctx, { protocol, app, key }, signal);
  const routers = [
    streamsApi(options),
    revocationsApi(authorizer),
    openapiRoute(),
    ...(options.routes ?? []),
    ...(options.hls ? [hlsRoutes({ hls: options.hls, authorizePlay: authorizePlay('hls'), ladderOf: options.transcodes?.ladderOf })] : []),
    httpFlvRoute({ ...options, authorizePlay: authorizePlay('http-flv') }),
  ];
  for (const router of routers) app.use(router.routes()).use(router.allowedMethods({ throw: true }));
  // Errors are answered (and logged) by jsonErrors; Koa's default handler would print them again.
  app.silent = true;
  return app;
}
