// The RTMP listener: accepts connections up to maxConnections, runs one
// RtmpSession each, and shuts down gracefully (publishers and players are
// told, sockets ended, stragglers destroyed).
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Config } from '../../config.ts';
import type { StreamHub } from '../../hub/hub.ts';
import { listenOn } from '../../connections/listen.ts';
import { addressKey, PerAddress } from '../../connections/per-address.ts';
import { ByteBudget } from '../../memory/byte-budget.ts';
import { SocketIo } from '../io/socket-io.ts';
import type { AdmissionCheck } from './admission.ts';
import { silentLogger, type RtmpLogger } from './logger.ts';
import { RtmpSession, type SessionConfig } from './session.ts';
import { createRtmpStats, type RtmpStats } from './stats.ts';

/** How often connections that make no progress are looked for; deadlines and timeouts are honoured to within this. */
const SWEEP_MS = 500;

export type RtmpServerConfig = SessionConfig &
  Pick<Config, 'rtmpBind' | 'maxConnections' | 'maxConnectionsPerAddress' | 'partialMessagesMaxBytes'>;

export interface RtmpServerOptions {
  hub: StreamHub;
  config: RtmpServerConfig;
  /** Checks every publish and play goes through before the hub is asked (admission.ts); none by default. */
  admission?: readonly AdmissionCheck[];
  logger?: RtmpLogger;
  stats?: RtmpStats;
  /** How long close() lets sockets flush before destroying them; default 2 s. */
  closeGraceMs?: number;
}

export interface RtmpServer {
  address(): AddressInfo;
  readonly stats: RtmpStats;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Asks every publisher to publish elsewhere (RtmpSession.requestReconnect),
   * gives those sent a reconnect request up to `waitMs` to hang up, then
   * closes the ones left. Players stay.
   */
  drainPublishers(waitMs: number): Promise<void>;
  /** Stops accepting, tells publishers and players, ends every connection. */
  close(): Promise<void>;
}

export async function startRtmpServer(options: RtmpServerOptions): Promise<RtmpServer> {
  const { hub, config } = options;
  const logger = options.logger ?? silentLogger;
  const stats = options.stats ?? createRtmpStats();
  const admission = options.admission ?? [];
  const io = new SocketIo();
  const inboundBudget = new ByteBudget(config.partialMessagesMaxBytes);
  stats.inbound = inboundBudget;
  const sessions = new Set<RtmpSession>();
  const perAddress = new PerAddress();
  let closing: Promise<void> | undefined;

  // Paused, so that no byte is read before the socket is rewrapped.
  const server: Server = createServer({ pauseOnConnect: true }, (accepted) => {
    const key = addressKey(accepted.remoteAddress);
    if (closing || sessions.size >= config.maxConnections) {
      stats.connectionsRefused.max_connections++;
      accepted.destroy();
      return;
    }
    if (!perAddress.add(key, config.maxConnectionsPerAddress)) {
      stats.connectionsRefused.per_address++;
      accepted.destroy();
      return;
    }
    stats.connectionsAccepted++;
    const { socket, attach } = io.adopt(accepted);
    const session = new RtmpSession(socket, {
      hub,
      config,
      io,
      admission,
      logger,
      stats,
      inboundBudget,
      onClose: (s) => {
        sessions.delete(s);
        perAddress.remove(key);
      },
    });
    attach(session);
    sessions.add(session);
  });
  await listenOn(server, config.rtmpBind, 'rtmp-bind');
  // After listen: an address that cannot be had is the caller's to report, once.
  server.on('error', (err) => logger.error({ err }, 'rtmp server error'));
  const address = server.address() as AddressInfo;
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const session of sessions) session.sweep(now);
  }, SWEEP_MS);
  sweep.unref();
  logger.info({ address: `${address.address}:${address.port}` }, 'rtmp listening');

  async function shutdown(): Promise<void> {
    clearInterval(sweep);
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    // Players first, so they hear Play.Stop rather than a publisher's end.
    const ordered = [...sessions].sort((a, b) => Number(b.playing) - Number(a.playing));
    for (const session of ordered) session.shutdown();
    const grace = options.closeGraceMs ?? 2000;
    const deadline = Date.now() + grace;
    while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const session of sessions) session.socket.destroy();
    await stopped;
  }

  async function drainPublishers(waitMs: number): Promise<void> {
    const asked = [...sessions].filter((s) => s.requestReconnect('this server is going away; publish again to be served by another'));
    const deadline = Date.now() + waitMs;
    while (asked.some((s) => s.publishing) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const session of asked) if (session.publishing) session.shutdown();
  }

  return {
    address: () => address,
    stats,
    drainPublishers,
    get connections() {
      return sessions.size;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
