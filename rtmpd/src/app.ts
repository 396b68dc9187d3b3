// rtmpd assembled: hub, recorder, snapshots, RTMP and HTTP servers, metrics.
// main.ts wraps this in a process; tests and the benchmark start it in-process.
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { parseTokens } from './auth/api-tokens.ts';
import { Authorizer } from './auth/authorizer.ts';
import { watchPath, type WatchedPath } from './secrets/mounted.ts';
import { splitHostPort, type Config } from './config.ts';
import { createHttpApp } from './http/app.ts';
import { consoleRoutes } from './http/console.ts';
import { metricsRoute } from './http/metrics-route.ts';
import { RecordingStore } from './http/recording-store.ts';
import { HlsServer } from './hls/server.ts';
import { warnIfDescriptorsShort } from './connections/descriptor-budget.ts';
import { ProxyProtocol } from './connections/proxy-protocol.ts';
import { startLiveness } from './http/liveness.ts';
import { listenHttp, type HttpServer } from './http/server.ts';
import type { Fleet } from './fleet/fleet.ts';
import { Forwards } from './forward/forwards.ts';
import { BitrateMeter } from './hub/bitrate.ts';
import { StreamHub } from './hub/hub.ts';
import { SocketIo } from './rtmp/io/socket-io.ts';
import { startRtmpServer, type RtmpServer } from './rtmp/server/server.ts';
import { SnapshotService } from './snapshot/service.ts';
import { createDir } from './storage/create-dir.ts';
import { Recorder } from './storage/recorder.ts';
import { Retention } from './storage/retention.ts';
import type { Logger } from './telemetry/logger.ts';
import { RtmpdMetrics } from './telemetry/metrics.ts';
import { koaTracing } from './telemetry/tracing.ts';
import type { Tls } from './tls/tls.ts';
import { Transcodes } from './transcode/transcodes.ts';
import { Webhooks } from './webhooks/webhooks.ts';

export interface Rtmpd {
  rtmpAddress: AddressInfo;
  /** When --rtmps-bind is set. */
  rtmpsAddress?: AddressInfo;
  /** When --https-bind is set. */
  httpsAddress?: AddressInfo;
  httpAddress: AddressInfo;
  /** When --health-bind is set. */
  healthAddress?: AddressInfo;
  hub: StreamHub;
  metrics: RtmpdMetrics;
  authorizer: Authorizer;
  /** The HTTP side's Koa app: its routers are what the OpenAPI document (docs/api/openapi.yaml) must describe. */
  httpApp: Koa;
  /**
   * Graceful stop: both listeners stop accepting, RTMP publishers and players
   * are told (onStatus) and disconnected, live HTTP-FLV responses end with
   * their streams, other in-flight responses get `shutdownGraceSeconds`, and
   * recordings are flushed; liveness (--health-bind) answers until the end.
   */
  stop(): Promise<void>;
}

/** What rtmpd runs besides its HTTP listener: startParts starts them, closeParts closes them. */
interface Parts {
  metrics: RtmpdMetrics;
  tls: Tls | undefined;
  proxy: ProxyProtocol | undefined;
  hub: StreamHub;
  recorder: Recorder;
  retention: Retention;
  recordings: RecordingStore;
  webhooks: Webhooks;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  hls: HlsServer;
  forwards: Forwards;
  transcodes: Transcodes;
  authorizer: Authorizer;
  apiTokens: WatchedPath<string[]> | undefined;
  fleet: Fleet | undefined;
  /**
   * What RTMP sessions and HTTP-FLV players write through: one tick, so a
   * stream's players merge their writes (--player-write-interval-min-players)
   * counted together, whatever their protocol.
   */
  playerIo: SocketIo;
  rtmp: RtmpServer;
}

export async function startRtmpd(config: Config, logger: Logger): Promise<Rtmpd> {
  warnIfDescriptorsShort(config, logger);
  if (config.recordingEnabled || config.recordingRules.some((rule) => rule.enabled)) await createDir(config.storageDir, '--storage-dir');
  if (config.snapshotEnabled) await createDir(config.keyframeDir, '--keyframe-dir');
  // First: its port's error stops the start before anything runs, and a start that hangs is not alive.
  const liveness = config.healthBind ? await startLiveness(config, logger.child({ component: 'liveness' })) : undefined;

  const parts = await startParts(config, logger);
  const { tls, proxy, rtmp } = parts;
  let draining = false;
  const httpApp = rtmpdHttpApp(config, logger, parts, { ready: () => !draining, http: () => http });
  let http: HttpServer;
  try {
    http = await listenHttp(httpApp, config, {
      ...(tls ? { secure: { accept: (raw, outcome) => tls.handshakes.accept(raw, 'https', outcome) } } : {}),
      ...(proxy ? { proxy } : {}),
    });
  } catch (err) {
    await closeParts(parts, Date.now());
    await liveness?.close();
    throw err;
  }
  parts.metrics.watchHttp(http.stats);

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    draining = true;
    const graceMs = config.shutdownGraceSeconds * 1000;
    const deadline = Date.now() + graceMs;
    await handOver(parts, graceMs);
    await closeParts(parts, deadline, () => http.close(graceMs));
    await liveness?.close();
  };
  return {
    rtmpAddress: rtmp.address(),
    ...(tls && config.rtmpsBind ? { rtmpsAddress: rtmp.secureAddress() } : {}),
    httpAddress: http.address(),
    ...(tls && config.httpsBind ? { httpsAddress: http.secureAddress() } : {}),
    ...(liveness ? { healthAddress: liveness.address() } : {}),
    hub: parts.hub,
    metrics: parts.metrics,
    authorizer: parts.authorizer,
    httpApp,
    stop: () => (stopping ??= stop()),
  };
}

/** Everything but the HTTP listener, each part watched by the metrics; the RTMP listener last, once what it hands streams to runs. */
async function startParts(config: Config, logger: Logger): Promise<Parts> {
  const metrics = new RtmpdMetrics({ maxStreams: config.metricsMaxStreams });
  // TLS first, so a bad certificate stops the start before anything runs; loaded only when a TLS port is asked for.
  const tls =
    config.rtmpsBind || config.httpsBind
      ? await import('./tls/tls.ts').then(({ startTls }) => startTls(config, logger.child({ component: 'tls' })))
      : undefined;
  if (tls) metrics.watchTls(tls);
  // Before anything listens, so a --proxy-protocol without trusted sources stops the start.
  const proxy = config.proxyProtocol.length > 0 ? new ProxyProtocol(config, logger.child({ component: 'proxy' })) : undefined;
  const hub = startHub(config, logger, metrics);
  const storage = await startRecordingsAndWebhooks(config, hub, logger, metrics);
  const outputs = startOutputs(config, hub, logger, metrics);
  const { authorizer, apiTokens } = await startAccess(config, hub, outputs.transcodes, logger);
  metrics.watchAuth(authorizer.stats);
  const fleet = config.fleetName ? await startFleetPod(config, { hub, ...storage, ...outputs }, logger) : undefined;
  if (fleet) metrics.watchFleet(fleet.stats);
  const playerIo = new SocketIo(config.playerWriteIntervalMs, config.playerWriteIntervalMinPlayers);
  const rtmp = await startRtmpServer({
    hub,
    config,
    io: playerIo,
    ...(tls ? { secure: { accept: (raw, outcome) => tls.handshakes.accept(raw, 'rtmps', outcome) } } : {}),
    admission: fleet ? [authorizer.rtmpCheck, fleet.admission] : [authorizer.rtmpCheck],
    logger: logger.child({ component: 'rtmp' }),
    ...(proxy ? { proxy } : {}),
  });
  metrics.watchRtmp(rtmp.stats);
  return { metrics, tls, proxy, hub, ...storage, ...outputs, authorizer, apiTokens, fleet, playerIo, rtmp };
}

/** The stream hub, with its bounds on what players and the GOP cache may hold. */
function startHub(config: Config, logger: Logger, metrics: RtmpdMetrics): StreamHub {
  const hub = new StreamHub({
    gopCacheMaxBytes: config.gopCacheMaxBytes,
    playerMaxBufferBytes: config.playerMaxBufferBytes,
    playerMaxQueueMs: config.playerMaxQueueSeconds * 1000,
    playerStallTimeoutMs: config.playerStallTimeoutSeconds * 1000,
    playerMinBytesPerSecond: config.playerMinBytesPerSecond,
    onRelayed: metrics.observeRelay,
    onParseError: (stream, err, count) =>
      logger.warn(
        { stream: stream.id, detail: err.message, count },
        'stream: codec data of the publisher could not be read (relayed anyway)',
      ),
  });
  metrics.watchHub(hub);
  return hub;
}

/** The recorder, its retention, the recordings it serves, and the webhooks that announce streams and closed files. */
async function startRecordingsAndWebhooks(config: Config, hub: StreamHub, logger: Logger, metrics: RtmpdMetrics) {
  const recorder = new Recorder({
    hub,
    storageDir: config.storageDir,
    config,
    logger: logger.child({ component: 'recorder' }),
    onFileClosed: (path) => {
      retention.fileClosed(path);
      webhooks.recordingCompleted(path);
    },
  });
  const retention = new Retention({
    storageDir: config.storageDir,
    config,
    writing: () => recorder.writing(),
    logger: logger.child({ component: 'retention' }),
  });
  const recordings = new RecordingStore(config.storageDir, recorder, (path) => retention.forget(path));
  const webhooks = await Webhooks.start({
    hub,
    config,
    recordings,
    logger: logger.child({ component: 'webhooks' }),
    onDelivered: metrics.observeWebhookDelivery,
  });
  metrics.watchWebhooks(webhooks.delivery);
  metrics.watchRecorder(recorder.stats, retention.stats, (stream) => recorder.stateOf(stream));
  return { recorder, retention, recordings, webhooks };
}

/** What live streams are turned into besides relays: snapshots, bitrates, HLS, forwards to other servers, transcodes. */
function startOutputs(config: Config, hub: StreamHub, logger: Logger, metrics: RtmpdMetrics) {
  const snapshots = new SnapshotService({ hub, config, logger, onDecode: metrics.observeSnapshotDecode });
  metrics.watchSnapshots(snapshots.stats);
  const bitrate = new BitrateMeter(hub);
  const hls = new HlsServer({ hub, config, logger: logger.child({ component: 'hls' }) });
  metrics.watchHls(hls);
  const forwards = new Forwards({ hub, config, logger: logger.child({ component: 'forward' }) });
  metrics.watchForwards(forwards);
  const transcodes = new Transcodes({ hub, config, logger: logger.child({ component: 'transcode' }) });
  metrics.watchTranscodes(transcodes);
  return { snapshots, bitrate, hls, forwards, transcodes };
}

/** One pod of a fleet: loaded only when asked for, so a single server never loads the Kubernetes client. */
async function startFleetPod(
  config: Config,
  parts: Pick<Parts, 'hub' | 'snapshots' | 'bitrate' | 'hls' | 'recorder' | 'forwards' | 'transcodes' | 'recordings'>,
  logger: Logger,
): Promise<Fleet> {
  const { fleetRequested, startFleet } = await import('./fleet/fleet.ts');
  fleetRequested(config);
  const { hub, snapshots, bitrate, hls, recorder, forwards, transcodes, recordings } = parts;
  return startFleet({
    config,
    hub,
    snapshots,
    bitrate,
    sources: { hls, recorder, forwards, transcodes },
    transcodes,
    recordings,
    httpPort: splitHostPort(config.httpBind).port,
    logger,
  });
}

/** Who may publish, play and use the API: the auth rules, and the API tokens when a file holds them. */
async function startAccess(config: Config, hub: StreamHub, transcodes: Transcodes, logger: Logger) {
  const authorizer = await Authorizer.start({ config, hub, logger, renditions: transcodes });
  const apiTokens = config.apiTokenFile
    ? await watchPath({
        path: config.apiTokenFile,
        option: '--api-token-file',
        label: 'auth: API tokens',
        parse: parseTokens,
        logger: logger.child({ component: 'auth' }),
        intervalMs: 1000,
      })
    : undefined;
  logAccess(config, authorizer, logger);
  return { authorizer, apiTokens };
}

/** The HTTP side: the API and playback over the parts, the console (when on), /metrics and the fleet's routes. */
function rtmpdHttpApp(config: Config, logger: Logger, p: Parts, o: { ready: () => boolean; http: () => HttpServer }): Koa {
  // The page builds its URLs from its own host name and the ports bound here (the HTTP ones once they listen).
  const consoleRouter = config.consoleEnabled
    ? consoleRoutes({
        settings: () => ({
          rtmp_port: p.rtmp.address().port,
          rtmps_port: p.rtmp.secureAddress()?.port ?? null,
          http_port: o.http().address().port,
          https_port: o.http().secureAddress()?.port ?? null,
          recordings: true,
          snapshots: config.snapshotEnabled,
        }),
        logger: logger.child({ component: 'console' }),
      })
    : undefined;
  const { fleet, authorizer, apiTokens } = p;
  return createHttpApp({
    hub: p.hub,
    snapshots: p.snapshots,
    bitrate: p.bitrate,
    hls: p.hls,
    recorder: p.recorder,
    forwards: p.forwards,
    transcodes: p.transcodes,
    logger: logger.child({ component: 'http' }),
    playWaitMs: config.playWaitSeconds * 1000,
    playerIo: p.playerIo,
    authorizer,
    access: { config, tokens: () => apiTokens?.value, onRefused: (reason) => authorizer.countRefusal('api', reason) },
    forwardedFrom: config.httpForwardedFrom,
    routes: [...(consoleRouter ? [consoleRouter] : []), metricsRoute(p.metrics), ...(fleet ? [fleet.routes] : [])],
    middleware: [koaTracing()],
    ready: o.ready,
    ...(fleet ? { fleet: fleet.streams } : {}),
    recordings: { store: p.recordings, ...(fleet ? { fleet: fleet.recordings } : {}) },
  });
}

/**
 * A pod of a fleet hands its streams over before it stops: its publishers
 * are asked to publish on another pod (whose claim it lets go of at once),
 * and the players still served here get the rest of the grace period.
 */
async function handOver({ fleet, rtmp, hub }: Parts, graceMs: number): Promise<void> {
  if (!fleet) return;
  const deadline = Date.now() + graceMs;
  await fleet.drain();
  await fleet.releaseClaims();
  await rtmp.drainPublishers(Math.min(graceMs / 2, 5000));
  const watching = () => hub.list().reduce((n, s) => n + s.playerCount + s.subscriberCounts().relay, 0);
  while (watching() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/**
 * Closes the parts in order, by `deadline` where they wait: stop() after the
 * hand-over, with `closeHttp` ending the HTTP listener's connections
 * alongside; a start whose HTTP listener failed, at once.
 */
async function closeParts(p: Parts, deadline: number, closeHttp?: () => Promise<void>): Promise<void> {
  // No ffmpeg outlives rtmpd: each is stopped (SIGTERM, SIGKILL past its deadline) and waited for.
  const transcodesClosed = p.transcodes.close();
  // Handshakes cut short by the shutdown are no clients' failures: ended here, they are not counted.
  p.tls?.handshakes.close();
  const httpClosed = closeHttp?.();
  await p.rtmp.close();
  // Streams that had no RTMP publisher (in-process tests) end here.
  p.hub.closeAll();
  p.forwards.close();
  await transcodesClosed;
  await httpClosed;
  await p.fleet?.stop();
  await p.recorder.close();
  // The streams' ends and the files just closed are announced within what is left of the grace.
  await p.webhooks.close(deadline - Date.now());
  await p.retention.close();
  p.hls.close();
  p.snapshots.close();
  p.bitrate.close();
  p.metrics.close();
  p.tls?.close();
  p.authorizer.close();
  p.apiTokens?.close();
}

/** One line each on who may publish and play and who may use the API, so an open server says so at start. */
function logAccess(config: Config, authorizer: Authorizer, logger: Logger): void {
  if (authorizer.open)
    logger.warn(
      'auth is open: anyone who reaches the RTMP or HTTP port may publish and play any stream key (set --auth-rules; README, Security)',
    );
  else logger.info({ rules: config.authRules.length }, 'auth: publish and play are checked by --auth-rules');
  const tokens = config.apiTokenFile ? 'need a bearer token from --api-token-file' : 'are disabled (no --api-token-file)';
  logger.info(
    { apiReadAccess: config.apiReadAccess, metricsAccess: config.metricsAccess },
    `API: reads are ${config.apiReadAccess}, /metrics is ${config.metricsAccess}; kick and revoke ${tokens}`,
  );
}
