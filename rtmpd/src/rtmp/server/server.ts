// The RTMP listener: accepts connections up to maxConnections, runs one
// RtmpSession each, and shuts down gracefully (publishers and players are
// told, sockets ended, stragglers destroyed).
import { createServer, type AddressInfo, type Server } from 'node:net';
import { splitHostPort, type Config } from '../../config.ts';
import type { StreamHub } from '../../hub/hub.ts';
import { ByteBudget } from '../../memory/byte-budget.ts';
import { SocketIo } from '../io/socket-io.ts';
import type { AdmissionCheck } from './admission.ts';
import { silentLogger, type RtmpLogger } from './logger.ts';
import { RtmpSession, type SessionConfig } from './session.ts';
import { createRtmpStats, type RtmpStats } from './stats.ts';

/** How often idle connections are looked for; the idle timeout is honoured to within this. */
const IDLE_SWEEP_MS = 1000;

export type RtmpServerConfig = SessionConfig & Pick<Config, 'rtmpBind' | 'maxConnections' | 'partialMessagesMaxBytes'>;

export interface RtmpServerOptions {
  hub: StreamHub;
  config: RtmpServerConfig;
  /** Checks every publish and play goes through before the hub is asked (admission.ts); none by default. */
  admission?: readonly AdmissionCheck[];
  logger?: RtmpLogger;
  stats?: RtmpStats;
  /** A peer that has not finished the handshake by then is dropped; default min(10 s, idle timeout). */
  handshakeTimeoutMs?: number;
  /** How long close() lets sockets flush before destroying them; default 2 s. */
  closeGraceMs?: number;
}

export interface RtmpServer {
  address(): AddressInfo;
  readonly stats: RtmpStats;
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting, tells publishers and players, ends every connection. */
  close(): Promise<void>;
}

export async function startRtmpServer(options: RtmpServerOptions): Promise<RtmpServer> {
  const { hub, config } = options;
  const logger = options.logger ?? silentLogger;
  const stats = options.stats ?? createRtmpStats();
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? Math.min(10_000, config.idleTimeoutSeconds * 1000);
  const admission = options.admission ?? [];
  const io = new SocketIo();
  const inboundBudget = new ByteBudget(config.partialMessagesMaxBytes);
  stats.inbound = inboundBudget;
  const sessions = new Set<RtmpSession>();
  let closing: Promise<void> | undefined;

  // Paused, so that no byte is read before the socket is rewrapped.
  const server: Server = createServer({ pauseOnConnect: true }, (accepted) => {
    if (closing || sessions.size >= config.maxConnections) {
      stats.connectionsRefused++;
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
      handshakeTimeoutMs,
      onClose: (s) => sessions.delete(s),
    });
    attach(session);
    sessions.add(session);
  });
  server.on('error', (err) => logger.error({ err }, 'rtmp server error'));

  const { host, port } = splitHostPort(config.rtmpBind);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const idleSweep = setInterval(
    () => {
      const now = performance.now();
      for (const session of sessions) session.sweepIdle(now);
    },
    Math.min(IDLE_SWEEP_MS, config.idleTimeoutSeconds * 500),
  );
  idleSweep.unref();
  logger.info({ address: `${address.address}:${address.port}` }, 'rtmp listening');

  async function shutdown(): Promise<void> {
    clearInterval(idleSweep);
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

  return {
    address: () => address,
    stats,
    get connections() {
      return sessions.size;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
