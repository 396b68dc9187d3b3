// The RTMP listeners: accept connections up to maxConnections, over plain
// TCP and, when --rtmps-bind is set, over TLS; run one RtmpSession each; and
// shut down gracefully (publishers and players are told, sockets ended,
// stragglers destroyed).
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Config } from '../../config.ts';
import type { StreamHub } from '../../hub/hub.ts';
import type { RtmpProtocol } from '../../hub/subscriber.ts';
import { listenOn } from '../../connections/listen.ts';
import type { SecureTransport } from '../../connections/secure-transport.ts';
import { addressKey, PerAddress } from '../../connections/per-address.ts';
import { whenClientKnown, type HeaderOutcome, type ProxyProtocol } from '../../connections/proxy-protocol.ts';
import { PublishRate } from '../../connections/publish-rate.ts';
import { ByteBudget } from '../../memory/byte-budget.ts';
import { SocketIo } from '../io/socket-io.ts';
import type { AdmissionCheck } from './admission.ts';
import { FaultLog } from '../../telemetry/fault-log.ts';
import { silentLogger, type RtmpLogger } from './logger.ts';
import { RtmpSession, type SessionConfig } from './session.ts';
import { createListenerStats, createRtmpStats, type RtmpListenerStats, type RtmpStats } from './stats.ts';

/** How often connections that make no progress are looked for; deadlines and timeouts are honoured to within this. */
const SWEEP_MS = 500;

export type RtmpServerConfig = SessionConfig &
  Pick<
    Config,
    | 'rtmpBind'
    | 'rtmpsBind'
    | 'maxConnections'
    | 'maxConnectionsPerAddress'
    | 'maxPublishesPerAddressPerMinute'
    | 'partialMessagesMaxBytes'
    | 'playerWriteIntervalMs'
    | 'playerWriteIntervalMinPlayers'
  >;

export interface RtmpServerOptions {
  hub: StreamHub;
  config: RtmpServerConfig;
  /** Checks every publish and play goes through before the hub is asked (admission.ts); none by default. */
  admission?: readonly AdmissionCheck[];
  logger?: RtmpLogger;
  stats?: RtmpStats;
  /** How long close() lets sockets flush before destroying them; default 2 s. */
  closeGraceMs?: number;
  /** Needed when config.rtmpsBind is set. */
  secure?: SecureTransport;
  /** Reads the PROXY headers of trusted load balancers' connections (--proxy-protocol); none by default. */
  proxy?: ProxyProtocol;
}

export interface RtmpServer {
  address(): AddressInfo;
  /** The RTMPS listener's address, when there is one. */
  secureAddress(): AddressInfo | undefined;
  readonly stats: RtmpStats;
  /** Connections open now (TLS handshakes in progress not included). */
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
  const io = new SocketIo(config.playerWriteIntervalMs, config.playerWriteIntervalMinPlayers);
  const inboundBudget = new ByteBudget(config.partialMessagesMaxBytes);
  stats.inbound = inboundBudget;
  const sessions = new Set<RtmpSession>();
  const perAddress = new PerAddress();
  const publishRate = new PublishRate();
  const faults = new FaultLog(logger);
  let closing: Promise<void> | undefined;

  /**
   * Connections with no session yet, awaiting a load balancer's PROXY header
   * or in their TLS handshake: they hold a connection slot, but no
   * per-address one until their client is known.
   */
  const pending = new Set<Socket>();

  /** The counters of a listener that listens (rtmps's are made when it starts listening). */
  const listenerStats = (protocol: RtmpProtocol): RtmpListenerStats => stats.protocols[protocol]!;

  /** Whether a new connection may have a slot; refused (counted for its listener) when --max-connections are open. */
  function hasSlot(accepted: Socket, protocol: RtmpProtocol): boolean {
    if (!closing && sessions.size + pending.size < config.maxConnections) return true;
    listenerStats(protocol).connectionsRefused.max_connections++;
    accepted.destroy();
    return false;
  }

  /**
   * Counts a connection under its client's address (after a PROXY header,
   * the client the balancer named); the key when admitted, undefined when
   * that address has no slot left (refused and counted).
   */
  function admit(socket: Socket, protocol: RtmpProtocol): string | undefined {
    const listener = listenerStats(protocol);
    const key = addressKey(socket.remoteAddress);
    if (!perAddress.add(key, config.maxConnectionsPerAddress)) {
      listener.connectionsRefused.per_address++;
      socket.destroy();
      return undefined;
    }
    listener.connectionsAccepted++;
    return key;
  }

  function run(socket: Socket, key: string, protocol: RtmpProtocol): RtmpSession {
    const session = new RtmpSession(socket, {
      hub,
      config,
      io,
      admission,
      logger,
      faults,
      protocol,
      stats: listenerStats(protocol),
      inboundBudget,
      mayStartPublish: () => publishRate.take(key, config.maxPublishesPerAddressPerMinute, performance.now()),
      onClose: (s) => {
        sessions.delete(s);
        perAddress.remove(key);
      },
    });
    sessions.add(session);
    return session;
  }

  // Paused, so that no byte is read before the socket is rewrapped.
  const server: Server = createServer({ pauseOnConnect: true }, (accepted) => {
    if (!hasSlot(accepted, 'rtmp')) return;
    const { socket, attach } = io.adopt(accepted);
    const refused = listenerStats('rtmp').connectionsRefused;
    const readHeader = (proxy: ProxyProtocol, outcome: HeaderOutcome) =>
      attach({ receive: proxy.awaitHeader(socket, 'rtmp', refused, outcome) });
    whenClientKnown(options.proxy, socket, 'rtmp', pending, readHeader, (rest) => {
      const key = admit(socket, 'rtmp');
      if (key === undefined) return;
      const session = run(socket, key, 'rtmp');
      attach(session);
      if (rest.length > 0) session.receive(rest);
    });
  });
  await listenOn(server, config.rtmpBind, 'rtmp-bind');
  // After listen: an address that cannot be had is the caller's to report, once.
  server.on('error', (err) => logger.error({ err }, 'rtmp server error'));
  const address = server.address() as AddressInfo;
  const secureServer = config.rtmpsBind ? await listenSecure(config.rtmpsBind) : undefined;

  /**
   * TLS sockets decrypt into buffers of their own, so a session over TLS
   * reads from 'data' events rather than the plain port's shared buffer.
   */
  async function listenSecure(bind: string): Promise<Server> {
    const { secure } = options;
    if (!secure) throw new Error('--rtmps-bind is set but no TLS transport was given');
    stats.protocols.rtmps ??= createListenerStats();
    const tlsServer = createServer((accepted) => {
      if (!hasSlot(accepted, 'rtmps')) return;
      // The PROXY header comes before the TLS ClientHello, and what follows it is put back for the handshake.
      const refused = listenerStats('rtmps').connectionsRefused;
      const readHeader = (proxy: ProxyProtocol, outcome: HeaderOutcome) => proxy.readHeader(accepted, 'rtmps', refused, outcome);
      whenClientKnown(options.proxy, accepted, 'rtmps', pending, readHeader, () => {
        const key = admit(accepted, 'rtmps');
        if (key === undefined) return;
        const handshaking = secure.accept(accepted, {
          secured: (socket) => {
            pending.delete(handshaking);
            if (closing) {
              socket.destroy();
              perAddress.remove(key);
              return;
            }
            const session = run(socket, key, 'rtmps');
            socket.on('data', (bytes: Buffer) => io.handleRead(session, bytes));
          },
          failed: () => {
            pending.delete(handshaking);
            perAddress.remove(key);
          },
        });
        pending.add(handshaking);
      });
    });
    try {
      await listenOn(tlsServer, bind, 'rtmps-bind');
    } catch (err) {
      server.close();
      throw err;
    }
    tlsServer.on('error', (err) => logger.error({ err }, 'rtmps server error'));
    const { address: host, port } = tlsServer.address() as AddressInfo;
    logger.info({ address: `${host}:${port}` }, 'rtmps listening');
    return tlsServer;
  }

  const sweep = setInterval(() => {
    const now = performance.now();
    for (const session of sessions) session.sweep(now);
    publishRate.prune(config.maxPublishesPerAddressPerMinute, now);
  }, SWEEP_MS);
  sweep.unref();
  logger.info({ address: `${address.address}:${address.port}` }, 'rtmp listening');

  async function shutdown(): Promise<void> {
    clearInterval(sweep);
    const stopped = Promise.all(
      [server, secureServer].map((listener) => listener && new Promise<void>((resolve) => listener.close(() => resolve()))),
    );
    for (const socket of pending) socket.destroy();
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
    secureAddress: () => secureServer?.address() as AddressInfo | undefined,
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
