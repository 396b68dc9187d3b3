import Koa from 'koa';
import type { Authorizer } from '../auth/authorizer.ts';
import { apiAccess, authorizeHttpPlay, type ApiAccessOptions } from '../auth/http-access.ts';
import type { HlsServer } from '../hls/server.ts';
import type { BitrateMeter } from '../hub/bitrate.ts';
import type { StreamHub } from '../hub/hub.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import { SocketIo } from '../rtmp/io/socket-io.ts';
import type { Recorder } from '../storage/recorder.ts';
import type { Logger } from '../telemetry/logger.ts';
import { trustedSources } from '../connections/trusted.ts';
import { cors } from './cors.ts';
import { jsonErrors } from './errors.ts';
import { forwardedClient } from './forwarded.ts';
import { hlsRoutes, type HlsRoutesOptions } from './hls.ts';
import { httpFlvRoute } from './http-flv.ts';
import { noQuery, refuseBody } from './query.ts';
import type { Router } from './required-modules.ts';
import type { RecordingsApiOptions } from './recordings-api.ts';
import { lazyRouters, routerFor, type RouteGroup } from './routing.ts';
import type { StreamViewSources } from './stream-view.ts';
import type { FleetStreams } from './streams-api.ts';

export interface HttpAppOptions {
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  /** Serves HLS, and adds each stream's HLS URL and players to the stream API. */
  hls?: HlsServer;
  /** Adds each stream's recording state to the stream API. */
  recorder?: Recorder;
  /** Serves the recordings API. */
  recordings?: RecordingsApiOptions;
  /** Adds each stream's forwards to the stream API. */
  forwards?: StreamViewSources['forwards'];
  /** Adds each stream's transcode to the stream API, and its renditions to its multivariant playlist. */
  transcodes?: StreamViewSources['transcodes'] & Pick<HlsRoutesOptions, 'ladderOf' | 'renditionArrival'>;
  logger: Logger;
  playWaitMs: number;
  /** Writes HTTP-FLV players' tags: rtmpd's merges them as --player-write-interval-ms says; by default, each tick's leave at its end. */
  playerIo?: SocketIo;
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

const TEXT = ['text/plain'];

/** Where the API's routes are (the stream, revocation, recording and OpenAPI document routes). */
const API_PREFIX = '/api/v1/';

/** /health: the process works (liveness); /ready: it takes new clients (readiness), until it drains. */
export const HEALTH_ROUTES = {
  health: {
    method: 'get',
    paths: ['/health'],
    summary: 'Liveness: the process works',
    access: 'open',
    query: noQuery,
    ok: { 200: { description: 'OK', media: TEXT } },
  },
  ready: {
    method: 'get',
    paths: ['/ready'],
    summary: 'Readiness: rtmpd takes new clients (503 while it drains)',
    access: 'open',
    query: noQuery,
    ok: { 200: { description: 'OK', media: TEXT }, 503: { description: 'draining', media: TEXT } },
  },
} satisfies RouteGroup;

const healthRoutes = (ready: () => boolean): Router =>
  routerFor(HEALTH_ROUTES, {
    health: (ctx) => {
      ctx.type = 'text/plain';
      ctx.body = 'OK';
    },
    ready: (ctx) => {
      const taking = ready();
      ctx.type = 'text/plain';
      ctx.status = taking ? 200 : 503;
      ctx.body = taking ? 'OK' : 'draining';
    },
  });

/** Each router, and its answer to a method a path does not take: a 405 that names those it does (see jsonErrors). */
function mount(app: Koa, router: Router): void {
  app.use(router.routes()).use(router.allowedMethods());
}

/** The HTTP side of rtmpd: health, the stream API, snapshots, HTTP-FLV, and whatever `routes` adds. */
export function createHttpApp(options: HttpAppOptions): Koa {
  const app = new Koa();
  // First, so that everything after it sees the client behind trusted proxies in ctx.ip.
  if (options.forwardedFrom?.length) app.use(forwardedClient(trustedSources(options.forwardedFrom)));
  app.use(cors);
  app.use(jsonErrors(options.logger));
  for (const middleware of options.middleware ?? []) app.use(middleware);
  // Before the API's access check: a probe is answered whatever it sends.
  mount(app, healthRoutes(options.ready ?? (() => true)));
  app.use(apiAccess(options.access));
  app.use(refuseBody);
  const { authorizer } = options;
  const authorizePlay = (protocol: 'http-flv' | 'hls') => (ctx: Koa.Context, app: string, key: string, signal: AbortSignal) =>
    authorizeHttpPlay(authorizer, ctx, { protocol, app, key }, signal);
  // The API's modules and their schemas load at its first request (most rtmpds are never asked).
  app.use(lazyRouters(API_PREFIX, () => import('./api.ts').then(({ apiRouters }) => apiRouters(options))));
  const routers = [
    ...(options.routes ?? []),
    ...(options.hls ? [hlsRoutes({ ...options.transcodes, hls: options.hls, authorizePlay: authorizePlay('hls') })] : []),
    httpFlvRoute({ ...options, playerIo: options.playerIo ?? new SocketIo(), authorizePlay: authorizePlay('http-flv') }),
  ];
  for (const router of routers) mount(app, router);
  // Errors are answered (and logged) by jsonErrors; Koa's default handler would print them again.
  app.silent = true;
  return app;
}
