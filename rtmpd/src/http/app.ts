import type { Router } from '@koa/router';
import Koa from 'koa';
import type { StreamHub } from '../hub/hub.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { BitrateMeter } from './bitrate.ts';
import { jsonErrors } from './errors.ts';
import { httpFlvRoute } from './http-flv.ts';
import { streamsApi } from './streams-api.ts';

export interface HttpAppOptions {
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  logger: Logger;
  playWaitMs: number;
  /** More routes (e.g. /metrics), matched before HTTP-FLV. */
  routes?: Router[];
  /** More middleware (e.g. tracing), run after error handling and before the routes. */
  middleware?: Koa.Middleware[];
}

/** The HTTP side of rtmpd: health, the stream API, snapshots, HTTP-FLV, and whatever `routes` adds. */
export function createHttpApp(options: HttpAppOptions): Koa {
  const app = new Koa();
  app.use(jsonErrors(options.logger));
  for (const middleware of options.middleware ?? []) app.use(middleware);
  const health = async (ctx: Koa.Context, next: Koa.Next) => {
    if (ctx.path !== '/health' || ctx.method !== 'GET') return next();
    ctx.type = 'text/plain';
    ctx.body = 'OK';
  };
  app.use(health);
  const routers = [streamsApi(options), ...(options.routes ?? []), httpFlvRoute(options)];
  for (const router of routers) app.use(router.routes()).use(router.allowedMethods({ throw: true }));
  // Errors are answered (and logged) by jsonErrors; Koa's default handler would print them again.
  app.silent = true;
  return app;
}
