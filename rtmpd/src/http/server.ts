import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type Koa from 'koa';
import type { Config } from '../config.ts';
import { listenOn } from '../connections/listen.ts';
import { addressKey, PerAddress } from '../connections/per-address.ts';
import { whenClientKnown, type HeaderOutcome, type ProxyProtocol } from '../connections/proxy-protocol.ts';
import type { SecureTransport } from '../connections/secure-transport.ts';
import { zeroConnectionRefusals, type ConnectionRefusal } from '../telemetry/metrics.ts';
import { createServer } from './required-modules.ts';

export type HttpServerConfig = Pick<
  Config,
  | 'httpBind'
  | 'httpsBind'
  | 'httpMaxConnections'
  | 'httpMaxConnectionsPerAddress'
  | 'httpHeadersTimeoutSeconds'
  | 'httpRequestTimeoutSeconds'
  | 'httpKeepAliveTimeoutSeconds'
  | 'playerStallTimeoutSeconds'
>;

/** What the listener counts; read when /metrics is scraped. */
interface HttpStats {
  /**
   * Admitted: after a trusted balancer's PROXY header, with a slot for the
   * client's address; HTTPS ones before their TLS handshake.
   */
  connectionsAccepted: number;
  /**
   * Refused at accept, by reason: max_connections (--http-max-connections
   * were open: dropped), per_address (--http-max-connections-per-address
   * from the client's address: answered 429, or closed before TLS).
   */
  connectionsRefused: Record<ConnectionRefusal, number>;
  /**
   * Connections closed for how their requests arrived, by reason:
   * request_timeout, bad_request, aborted (the peer hung up), pipelined,
   * response_stalled (its answer was not read); and pipelined_play, an
   * HTTP-FLV request refused (its connection kept) for coming ahead of an
   * earlier answer's end.
   */
  clientErrors: Record<string, number>;
}

/**
 * Requests a connection may send ahead of their answers (HTTP/1.1
 * pipelining; browsers and players send one at a time). Node reads and
 * answers pipelined requests while the kernel takes the answers, so a client
 * that sends GETs and never reads would have each in memory, about 50 MB per
 * connection at the time the request timeout ends it.
 */
const MAX_PIPELINED_REQUESTS = 16;

/** How long a connection answered with an error by hand (endWithError) may take to read it and hang up before it is cut. */
const ERROR_LINGER_MS = 1000;

export interface HttpServer {
  address(): AddressInfo;
  /** The HTTPS listener's address, when there is one. */
  secureAddress(): AddressInfo | undefined;
  readonly stats: HttpStats;
  /**
   * Stops accepting, lets in-flight responses finish for up to `graceMs`,
   * then cuts what is left. Live HTTP-FLV responses end when their streams
   * do, so close the hub first.
   */
  close(graceMs: number): Promise<void>;
}

export interface HttpTransports {
  /** Needed when config.httpsBind is set. */
  secure?: SecureTransport;
  /** Reads the PROXY headers of trusted load balancers' connections (--proxy-protocol). */
  proxy?: ProxyProtocol;
}

export async function listenHttp(app: Koa, config: HttpServerConfig, { secure, proxy }: HttpTransports = {}): Promise<HttpServer> {
  const stats: HttpStats = {
    connectionsAccepted: 0,
    connectionsRefused: zeroConnectionRefusals(),
    clientErrors: Object.create(null) as Record<string, number>,
  };
  const server = createHttpServer(app, config, stats);
  const gate = connectionGate(config, stats, proxy);
  const serveHttp = admitFirst(server, (socket, serve) =>
    gate.whenClientKnown(socket, 'http', () => {
      if (gate.admit(socket)) serve(socket);
      else refuseTooMany(socket);
      // After a PROXY header the socket was left paused.
      socket.resume();
    }),
  );
  await listenOn(server, config.httpBind, 'http-bind');
  const secureServer = config.httpsBind
    ? await listenSecure(config.httpsBind, { server, serveHttp, gate, secure, config, stats })
    : undefined;
  return {
    address: () => server.address() as AddressInfo,
    secureAddress: () => secureServer?.address() as AddressInfo | undefined,
    stats,
    close: (graceMs) => closeGracefully(server, secureServer, gate.awaitingHeader, graceMs),
  };
}

/** Node's HTTP server with the request deadlines and connection cap of the config, counting what it refuses. */
function createHttpServer(app: Koa, config: HttpServerConfig, stats: HttpStats): Server {
  const requestTimeout = config.httpRequestTimeoutSeconds * 1000;
  const headersTimeout = Math.min(config.httpHeadersTimeoutSeconds * 1000, requestTimeout);
  // Node checks the request deadlines this often (30 s by default, longer than the deadlines themselves).
  const connectionsCheckingInterval = Math.min(1000, headersTimeout / 2);
  const server: Server = createServer(
    // requireHost answers a request without Host, where Node's own answer is a bare status line.
    { requestTimeout, headersTimeout, connectionsCheckingInterval, requireHostHeader: false },
    answerInTurn(
      requireHost(
        closeStalled(app.callback(), config.playerStallTimeoutSeconds * 1000, () => count(stats, 'response_stalled')),
        () => count(stats, 'bad_request'),
      ),
      (reason) => count(stats, reason),
    ),
  );
  // Only while the request arrives: a response, such as a live HTTP-FLV one, is not timed.
  server.requestTimeout = requestTimeout;
  server.keepAliveTimeout = config.httpKeepAliveTimeoutSeconds * 1000;
  server.maxConnections = config.httpMaxConnections;
  server.on('drop', () => stats.connectionsRefused.max_connections++);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, stats));
  // A proxy tunnel: Node destroys the connection without a word when nothing listens for CONNECT.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {});
    endWithError(socket, '405 Method Not Allowed', 'method_not_allowed', 'rtmpd is no proxy: it does not take CONNECT');
  });
  return server;
}

type ConnectionGate = ReturnType<typeof connectionGate>;

/** What an accepted connection, HTTP or HTTPS, goes through before it is served: its PROXY header, then its address's slot. */
function connectionGate(config: HttpServerConfig, stats: HttpStats, proxy: ProxyProtocol | undefined) {
  const perAddress = new PerAddress();
  /** Connections Node's HTTP server does not know yet: close() ends them, or it would wait for their header deadline. */
  const awaitingHeader = new Set<Socket>();
  return {
    awaitingHeader,
    /** Counts `socket` under its client's address until it closes; false (counted) when that address has no slot left. */
    admit(socket: Socket): boolean {
      const key = addressKey(socket.remoteAddress);
      if (!perAddress.add(key, config.httpMaxConnectionsPerAddress)) {
        stats.connectionsRefused.per_address++;
        return false;
      }
      socket.once('close', () => perAddress.remove(key));
      stats.connectionsAccepted++;
      return true;
    },
    /** Calls `known` once the client's address is known: at once, or after the PROXY header of a trusted balancer's connection (the socket then left paused). */
    whenClientKnown(socket: Socket, listener: 'http' | 'https', known: () => void): void {
      const readHeader = (protocol: ProxyProtocol, outcome: HeaderOutcome) =>
        protocol.readHeader(socket, listener, stats.connectionsRefused, outcome);
      whenClientKnown(proxy, socket, listener, awaitingHeader, readHeader, known);
    },
  };
}

interface SecureListener {
  server: Server;
  serveHttp: (socket: Socket) => void;
  gate: ConnectionGate;
  secure: SecureTransport | undefined;
  config: HttpServerConfig;
  stats: HttpStats;
}

/**
 * HTTPS: the same server, fed the connections whose TLS handshake is done,
 * under its own connection cap. The per-address slot is taken at accept,
 * so a refused client costs no handshake, and held until the connection
 * closes, whether its handshake succeeded or not.
 */
async function listenSecure(bind: string, { server, serveHttp, gate, secure, config, stats }: SecureListener): Promise<TcpServer> {
  if (!secure) throw new Error('--https-bind is set but no TLS transport was given');
  const tlsServer = createTcpServer((accepted) =>
    // The PROXY header comes before the TLS ClientHello.
    gate.whenClientKnown(accepted, 'https', () => {
      if (!gate.admit(accepted)) {
        accepted.destroy();
        return;
      }
      secure.accept(accepted, { secured: serveHttp, failed: () => undefined });
    }),
  );
  tlsServer.maxConnections = config.httpMaxConnections;
  tlsServer.on('drop', () => stats.connectionsRefused.max_connections++);
  try {
    await listenOn(tlsServer, bind, 'https-bind');
  } catch (err) {
    server.close();
    throw err;
  }
  return tlsServer;
}

/** Stops accepting, ends connections still in their PROXY header, and gives in-flight responses `graceMs`. */
function closeGracefully(server: Server, secureServer: TcpServer | undefined, awaitingHeader: Set<Socket>, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    secureServer?.close();
    for (const socket of awaitingHeader) socket.destroy();
    const deadline = setTimeout(() => server.closeAllConnections(), graceMs).unref();
    server.close(() => {
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * Puts `admit` ahead of Node's handling of each connection the listener
 * accepts: it passes the connections it admits to `serve`, and those it
 * refuses are never parsed. Returns Node's handling, for connections
 * admitted elsewhere (HTTPS, at accept).
 */
function admitFirst(server: Server, admit: (socket: Socket, serve: (socket: Socket) => void) => void): (socket: Socket) => void {
  const [node, ...others] = server.listeners('connection') as ((socket: Socket) => void)[];
  if (!node || others.length) throw new Error("expected one connection listener: Node's own");
  const serve = (socket: Socket) => node.call(server, socket);
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => admit(socket, serve));
  return serve;
}

/**
 * Answers a connection refused for --http-max-connections-per-address with a
 * JSON 429 before reading its request, then reads and drops what it sends
 * (closing with bytes unread would reset the connection, and the client
 * could lose the answer) until it hangs up or is cut.
 */
function refuseTooMany(socket: Socket): void {
  socket.on('error', () => {});
  socket.resume();
  endWithError(
    socket,
    '429 Too Many Requests',
    'too_many_connections',
    'too many connections from this address (--http-max-connections-per-address)',
  );
}

/**
 * Writes a JSON error answer by hand, for a connection Node's HTTP server
 * does not answer, and ends the connection: it is cut after
 * ERROR_LINGER_MS, as the listener is half-open, so a client that never
 * closes its side would otherwise hold it, and its --http-max-connections
 * slot, for good.
 */
function endWithError(socket: Socket, status: string, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), ERROR_LINGER_MS).unref();
}

/**
 * Hands requests to `handle`, and closes a connection with more than
 * MAX_PIPELINED_REQUESTS requests that have no finished answer (`refused`
 * counts it, 'pipelined'): what it holds is freed at once. A play that the
 * route refused for being pipelined (refusedAsPipelined) is counted too.
 */
function answerInTurn(handle: RequestHandler, refused: (reason: 'pipelined' | 'pipelined_play') => void): RequestHandler {
  const unanswered = new WeakMap<Socket, number>();
  return async (req, res) => {
    const { socket } = req;
    const waiting = (unanswered.get(socket) ?? 0) + 1;
    if (waiting > MAX_PIPELINED_REQUESTS) {
      // Node goes on with the requests already parsed from the read: one refusal each connection.
      if (!socket.destroyed) refused('pipelined');
      socket.destroy();
      return;
    }
    unanswered.set(socket, waiting);
    res.once('close', () => unanswered.set(socket, unanswered.get(socket)! - 1));
    await handle(req, res);
    if (pipelinedPlays.has(res)) refused('pipelined_play');
  };
}

/** Plays refused for coming ahead of an earlier answer's end, which answerInTurn counts. */
const pipelinedPlays = new WeakSet<ServerResponse>();

/**
 * Whether `res` answers a request sent before the answer ahead of it on its
 * connection had ended (HTTP/1.1 pipelining): such an answer has no socket
 * until those before it end. Marked so, it is counted as a pipelined play.
 */
export function refusedAsPipelined(res: ServerResponse): boolean {
  if (res.socket !== null) return false;
  pipelinedPlays.add(res);
  return true;
}

/**
 * Answers an HTTP/1.1 request that names no Host (RFC 9112 requires one)
 * with the JSON 400 of any other malformed request (`refused` counts it),
 * and closes the connection.
 */
function requireHost(handle: RequestHandler, refused: () => void): RequestHandler {
  return async (req, res) => {
    if (req.headers.host !== undefined || req.httpVersion !== '1.1') return handle(req, res);
    refused();
    const body = JSON.stringify({ error: { code: 'bad_request', message: 'an HTTP/1.1 request must have a Host header' } });
    res.writeHead(400, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      Connection: 'close',
    });
    res.end(body);
  };
}

/** Koa's request handler: resolves once the answer's head and body are handed to the response. */
type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Responses whose pace another part watches, which closeStalled leaves alone. */
const pacedElsewhere = new WeakSet<ServerResponse>();

/**
 * Leaves `res` to another part's pace check: an HTTP-FLV player's or a
 * fleet relay's, which the hub closes when it reads less than
 * --player-min-bytes-per-second, and which may rightly send nothing for a
 * while (a stream whose publisher is quiet).
 */
export function pacedByHub(res: ServerResponse): void {
  pacedElsewhere.add(res);
}

/**
 * Once `handle` has answered a request, closes the connection if its socket
 * then takes no byte of the answer for `stallMs` (`stalled` counts it). A
 * client that asks for a recording, an HLS segment, the OpenAPI document or
 * a long API answer and never reads it would otherwise hold its connection
 * (one of --http-max-connections), an open file and what is read ahead of
 * the socket for as long as it likes: Node times requests, not responses.
 * The socket's timer restarts whenever the kernel takes a write, so a slow
 * but reading client is not cut; the keep-alive timeout replaces it once the
 * answer is sent.
 */
function closeStalled(handle: RequestHandler, stallMs: number, stalled: () => void): RequestHandler {
  return async (req, res) => {
    await handle(req, res);
    if (res.writableFinished || res.destroyed || pacedElsewhere.has(res)) return;
    res.setTimeout(stallMs, () => {
      stalled();
      res.destroy();
    });
  };
}

function count(stats: HttpStats, reason: string): void {
  stats.clientErrors[reason] = (stats.clientErrors[reason] ?? 0) + 1;
}

/** Node's codes for a peer that hung up in the middle of its request. */
const ABORTED = new Set(['ECONNRESET', 'HPE_INVALID_EOF_STATE']);
/** Connections already answered: what the peer sends while the answer leaves is not another error. */
const answered = new WeakSet<Socket>();

/**
 * A request that timed out or could not be parsed gets the JSON error every
 * other failure gets (Node's default answer is a bare status line), and the
 * connection is closed. A peer that hung up is only counted.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, stats: HttpStats): void {
  if (answered.has(socket)) return;
  answered.add(socket);
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const reason = timedOut ? 'request_timeout' : ABORTED.has(err.code ?? '') ? 'aborted' : 'bad_request';
  count(stats, reason);
  // As Node's own handler: answer only when no response has started on the connection.
  const response = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
  if (reason === 'aborted' || !socket.writable || response?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, message] = timedOut
    ? ['408 Request Timeout', 'the request did not arrive in time']
    : ['400 Bad Request', 'malformed HTTP request'];
  endWithError(socket, status, reason, message);
}
