// rtmpd assembled: hub, recorder, snapshots, RTMP and HTTP servers, metrics.
// main.ts wraps this in a process; tests and the benchmark start it in-process.
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Router } from '@koa/router';
import type { Config } from './config.ts';
import { createHttpApp } from './http/app.ts';
import { BitrateMeter } from './http/bitrate.ts';
import { consoleRoutes } from './http/console.ts';
import { listenHttp } from './http/server.ts';
import { StreamHub } from './hub/hub.ts';
import { startRtmpServer } from './rtmp/server/server.ts';
import { SnapshotService } from './snapshot/service.ts';
import { Recorder } from './storage/recorder.ts';
import type { Logger } from './telemetry/logger.ts';
import { RtmpdMetrics } from './telemetry/metrics.ts';
import { koaTracing } from './telemetry/tracing.ts';

export interface Rtmpd {
  rtmpAddress: AddressInfo;
  httpAddress: AddressInfo;
  hub: StreamHub;
  metrics: RtmpdMetrics;
  /**
   * Graceful stop: both listeners stop accepting, RTMP publishers and players
   * are told (onStatus) and disconnected, live HTTP-FLV responses end with
   * their streams, other in-flight responses get `shutdownGraceSeconds`, and
   * recordings are flushed.
   */
  stop(): Promise<void>;
}

export async function startRtmpd(config: Config, logger: Logger): Promise<Rtmpd> {
  if (config.recordingEnabled) await mkdir(config.storageDir, { recursive: true });
  if (config.snapshotEnabled) await mkdir(config.keyframeDir, { recursive: true });

  const metrics = new RtmpdMetrics({ maxStreams: config.metricsMaxStreams });
  const hub = new StreamHub({
    gopCacheMaxBytes: config.gopCacheMaxBytes,
    playerMaxBufferBytes: config.playerMaxBufferBytes,
    playerStallTimeoutMs: config.playerStallTimeoutSeconds * 1000,
    onRelayed: metrics.observeRelay,
  });
  metrics.watchHub(hub);
  const recorder = config.recordingEnabled
    ? new Recorder({ hub, storageDir: config.storageDir, logger: logger.child({ component: 'recorder' }) })
    : undefined;
  if (recorder) metrics.watchRecorder(recorder.stats);
  const snapshots = new SnapshotService({ hub, config, logger, onDecode: metrics.observeSnapshotDecode });
  metrics.watchSnapshots(snapshots.stats);
  const bitrate = new BitrateMeter(hub);

  const rtmp = await startRtmpServer({ hub, config, logger: logger.child({ component: 'rtmp' }) });
  metrics.watchRtmp(rtmp.stats);

  const metricsRoute = new Router();
  metricsRoute.get('/metrics', async (ctx) => {
    ctx.type = metrics.contentType;
    ctx.body = await metrics.scrape();
  });
  const middleware = [koaTracing()];
  if (config.consoleEnabled) {
    // The page builds RTMP URLs from its own host name and the port bound here.
    const settings = { rtmp_port: rtmp.address().port, recordings: false /* no recordings API yet */ };
    middleware.push(consoleRoutes({ settings, logger: logger.child({ component: 'console' }) }));
  }
  const httpApp = createHttpApp({
    hub,
    snapshots,
    bitrate,
    logger: logger.child({ component: 'http' }),
    playWaitMs: config.playWaitSeconds * 1000,
    routes: [metricsRoute],
    middleware,
  });
  let http;
  try {
    http = await listenHttp(httpApp, config.httpBind);
  } catch (err) {
    await rtmp.close();
    hub.closeAll();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    const httpClosed = http.close(config.shutdownGraceSeconds * 1000);
    await rtmp.close();
    // Streams that had no RTMP publisher (in-process tests) end here.
    hub.closeAll();
    await httpClosed;
    await recorder?.close();
    snapshots.close();
    bitrate.close();
    metrics.close();
  };
  return {
    rtmpAddress: rtmp.address(),
    httpAddress: http.address(),
    hub,
    metrics,
    stop: () => (stopping ??= stop()),
  };
}
