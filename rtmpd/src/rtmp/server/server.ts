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
import { ByteBudget, SharedByAddress } from '../../memory/byte-budget.ts';
import { SocketIo } from '../io/socket-io.ts';
import type { AdmissionCheck } from './admission.ts';
import { FaultLog } from '../../telemetry/fault-log.ts';
import { silentLogger, type RtmpLogger } from './logger.ts';
import { publisherPartialBytes, RtmpSession, type SessionConfig } from './session.ts';
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
  /**
   * The I/O its connections share (app.ts hands it the one its HTTP-FLV
   * players write through too, so that a stream's merged writes count all
   * its players); by default one of its own, made from the config.
   */
  io?: SocketIo;
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
  const connections = new Connections(options);
  const { logger, stats } = connections;
  const server = await listenPlain(connections, options);
  const address = server.address() as AddressInfo;
  let secureServer: Server | undefined;
  try {
    secureServer = options.config.rtmpsBind ? await listenSecure(connections, options, options.config.rtmpsBind) : undefined;
  } catch (err) {
    server.close();
    throw err;
  }
  const sweep = setInterval(() => connections.sweep(), SWEEP_MS);
  sweep.unref();
  logger.info({ address: `${address.address}:${address.port}` }, 'rtmp listening');

  const shutdown = async (): Promise<void> => {
    clearInterval(sweep);
    await connections.shutdown([server, secureServer], options.closeGraceMs ?? 2000);
  };
  return {
    address: () => address,
    secureAddress: () => secureServer?.address() as AddressInfo | undefined,
    stats,
    drainPublishers: (waitMs) => connections.drainPublishers(waitMs),
    get connections() {
      return connections.sessions.size;
    },
    close() {
      connections.closing ??= shutdown();
      return connections.closing;
    },
  };
}

/**
 * What the RTMP and RTMPS listeners share: the sessions, the connections that
 * await one, and the limits every new connection is counted against.
 */
class Connections {
  readonly sessions = new Set<RtmpSession>();
  /**
   * Connections with no session yet, awaiting a load balancer's PROXY header
   * or in their TLS handshake: they hold a connection slot, but no
   * per-address one until their client is known.
   */
  readonly pending = new Set<Socket>();
  /** Set by close(): no connection is admitted after it. */
  closing: Promise<void> | undefined;
  readonly io: SocketIo;
  readonly logger: RtmpLogger;
  readonly stats: RtmpStats;
  readonly #hub: StreamHub;
  readonly #config: RtmpServerConfig;
  readonly #admission: readonly AdmissionCheck[];
  readonly #inboundBudgets: { publishing: SharedByAddress; others: SharedByAddress };
  readonly #perAddress = new PerAddress();
  readonly #publishRate = new PublishRate();
  readonly #faults: FaultLog;

  constructor(options: RtmpServerOptions) {
    const { config } = options;
    this.#hub = options.hub;
    this.#config = config;
    this.#admission = options.admission ?? [];
    this.logger = options.logger ?? silentLogger;
    this.stats = options.stats ?? createRtmpStats();
    this.io = options.io ?? new SocketIo(config.playerWriteIntervalMs, config.playerWriteIntervalMinPlayers);
    const half = (): SharedByAddress => new SharedByAddress(new ByteBudget(config.partialMessagesMaxBytes / 2), () => this.#addressShare());
    const budgets = { publishing: half(), others: half() };
    this.#inboundBudgets = budgets;
    this.stats.inbound = {
      get held() {
        return budgets.publishing.budget.held + budgets.others.budget.held;
      },
    };
    this.#faults = new FaultLog(this.logger);
  }

  /**
   * What the connections of one client address may hold of either half of
   * the budget for unfinished messages: a quarter, so that one host's
   * publishers that announce large messages and never finish them cannot
   * take the room of every other publisher, and never less than one
   * publisher may hold. None while --max-connections-per-address is off
   * (every client may come from a load balancer's few addresses).
   */
  #addressShare(): number {
    const config = this.#config;
    return config.maxConnectionsPerAddress > 0 ? Math.max(config.partialMessagesMaxBytes / 8, publisherPartialBytes(config)) : Infinity;
  }

  /** The counters of a listener that listens (rtmps's are made when it starts listening). */
  listenerStats(protocol: RtmpProtocol): RtmpListenerStats {
    return this.stats.protocols[protocol]!;
  }

  /** Whether a new connection may have a slot; refused (counted for its listener) when --max-connections are open. */
  hasSlot(accepted: Socket, protocol: RtmpProtocol): boolean {
    if (!this.closing && this.sessions.size + this.pending.size < this.#config.maxConnections) return true;
    this.listenerStats(protocol).connectionsRefused.max_connections++;
    accepted.destroy();
    return false;
  }

  /**
   * Counts a connection under its client's address (after a PROXY header,
   * the client the balancer named); the key when admitted, undefined when
   * that address has no slot left (refused and counted).
   */
  admit(socket: Socket, protocol: RtmpProtocol): string | undefined {
    const listener = this.listenerStats(protocol);
    const key = addressKey(socket.remoteAddress);
    if (!this.#perAddress.add(key, this.#config.maxConnectionsPerAddress)) {
      listener.connectionsRefused.per_address++;
      socket.destroy();
      return undefined;
    }
    listener.connectionsAccepted++;
    return key;
  }

  /** Gives back the per-address slot of an admitted connection that gets no session. */
  release(key: string): void {
    this.#perAddress.remove(key);
  }

  /** Runs an admitted connection's session. */
  run(socket: Socket, key: string, protocol: RtmpProtocol): RtmpSession {
    const config = this.#config;
    const session = new RtmpSession(socket, {
      hub: this.#hub,
      config,
      io: this.io,
      admission: this.#admission,
      logger: this.logger,
      faults: this.#faults,
      protocol,
      stats: this.listenerStats(protocol),
      inboundBudgets: { publishing: this.#inboundBudgets.publishing.of(key), others: this.#inboundBudgets.others.of(key) },
      mayStartPublish: () => this.#publishRate.take(key, config.maxPublishesPerAddressPerMinute, performance.now()),
      onClose: (s) => {
        this.sessions.delete(s);
        this.release(key);
      },
    });
    this.sessions.add(session);
    return session;
  }

  /** Ends the connections that make no progress, and forgets the publish rates of addresses quiet for a minute. */
  sweep(): void {
    const now = performance.now();
    for (const session of this.sessions) session.sweep(now);
    this.#publishRate.prune(this.#config.maxPublishesPerAddressPerMinute, now);
  }

  /** Closes the listeners, tells every session, and destroys the sockets still open after `graceMs`. */
  async shutdown(listeners: (Server | undefined)[], graceMs: number): Promise<void> {
    const stopped = Promise.all(listeners.map((listener) => listener && new Promise<void>((resolve) => listener.close(() => resolve()))));
    for (const socket of this.pending) socket.destroy();
    // Players first, so they hear Play.Stop rather than a publisher's end.
    const ordered = [...this.sessions].sort((a, b) => Number(b.playing) - Number(a.playing));
    for (const session of ordered) session.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const session of this.sessions) session.socket.destroy();
    await stopped;
  }

  async drainPublishers(waitMs: number): Promise<void> {
    const asked = [...this.sessions].filter((s) => s.requestReconnect('this server is going away; publish again to be served by another'));
    const deadline = Date.now() + waitMs;
    while (asked.some((s) => s.publishing) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const session of asked) if (session.publishing) session.shutdown();
  }
}

/** The plain RTMP listener. Paused on connect, so that no byte is read before the socket is rewrapped. */
async function listenPlain(connections: Connections, options: RtmpServerOptions): Promise<Server> {
  const { io } = connections;
  const server = createServer({ pauseOnConnect: true }, (accepted) => {
    if (!connections.hasSlot(accepted, 'rtmp')) return;
    const { socket, attach } = io.adopt(accepted);
    const refused = connections.listenerStats('rtmp').connectionsRefused;
    const readHeader = (proxy: ProxyProtocol, outcome: HeaderOutcome) =>
      attach({ receive: proxy.awaitHeader(socket, 'rtmp', refused, outcome) });
    whenClientKnown(options.proxy, socket, 'rtmp', connections.pending, readHeader, (rest) => {
      const key = connections.admit(socket, 'rtmp');
      if (key === undefined) return;
      const session = connections.run(socket, key, 'rtmp');
      attach(session);
      if (rest.length > 0) session.receive(rest);
    });
  });
  await listenOn(server, options.config.rtmpBind, 'rtmp-bind');
  // After listen: an address that cannot be had is the caller's to report, once.
  server.on('error', (err) => connections.logger.error({ err }, 'rtmp server error'));
  return server;
}

/**
 * The RTMPS listener. TLS sockets decrypt into buffers of their own, so a
 * session over TLS reads from 'data' events rather than the plain port's
 * shared buffer.
 */
async function listenSecure(connections: Connections, options: RtmpServerOptions, bind: string): Promise<Server> {
  const { secure } = options;
  if (!secure) throw new Error('--rtmps-bind is set but no TLS transport was given');
  const { io, logger, pending } = connections;
  connections.stats.protocols.rtmps ??= createListenerStats();
  const tlsServer = createServer((accepted) => {
    if (!connections.hasSlot(accepted, 'rtmps')) return;
    // The PROXY header comes before the TLS ClientHello, and what follows it is put back for the handshake.
    const refused = connections.listenerStats('rtmps').connectionsRefused;
    const readHeader = (proxy: ProxyProtocol, outcome: HeaderOutcome) => proxy.readHeader(accepted, 'rtmps', refused, outcome);
    whenClientKnown(options.proxy, accepted, 'rtmps', pending, readHeader, () => {
      const key = connections.admit(accepted, 'rtmps');
      if (key === undefined) return;
      const handshaking = secure.accept(accepted, {
        secured: (socket) => {
          pending.delete(handshaking);
          if (connections.closing) {
            socket.destroy();
            connections.release(key);
            return;
          }
          const session = connections.run(socket, key, 'rtmps');
          socket.on('data', (bytes: Buffer) => io.handleRead(session, bytes));
        },
        failed: () => {
          pending.delete(handshaking);
          connections.release(key);
        },
      });
      pending.add(handshaking);
    });
  });
  await listenOn(tlsServer, bind, 'rtmps-bind');
  tlsServer.on('error', (err) => logger.error({ err }, 'rtmps server error'));
  const { address: host, port } = tlsServer.address() as AddressInfo;
  logger.info({ address: `${host}:${port}` }, 'rtmps listening');
  return tlsServer;
}
