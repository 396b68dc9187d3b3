import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type Koa from 'koa';
import type { Config } from '../config.ts';
import { listenOn } from '../connections/listen.ts';
import { createServer } from './required-modules.ts';

export type HttpServerConfig = Pick<
  Config,
  'httpBind' | 'httpMaxConnections' | 'httpHeadersTimeoutSeconds' | 'httpRequestTimeoutSeconds' | 'httpKeepAliveTimeoutSeconds'
>;

/** What the listener counts; read when /metrics is scraped. */
interface HttpStats {
  /** Dropped at accept because --http-max-connections were open. */
  connectionsRefused: number;
  /** Connections closed before a request was read, by reason: request_timeout, bad_request, aborted (the peer hung up). */
  clientErrors: Record<string, number>;
}

export interface HttpServer {
  address(): AddressInfo;
  readonly stats: HttpStats;
  /**
   * Stops accepting, lets in-flight responses finish for up to `graceMs`,
   * then cuts what is left. Live HTTP-FLV responses end when their streams
   * do, so close the hub first.
   */
  close(graceMs: number): Promise<void>;
}

export async function listenHttp(app: Koa, config: HttpServerConfig): Promise<HttpServer> {
  const requestTimeout = config.httpRequestTimeoutSeconds * 1000;
  const headersTimeout = Math.min(config.httpHeadersTimeoutSeconds * 1000, requestTimeout);
  // Node checks the request deadlines this often (30 s by default, longer than the deadlines themselves).
  const connectionsCheckingInterval = Math.min(1000, headersTimeout / 2);
  const server: Server = createServer({ requestTimeout, headersTimeout, connectionsCheckingInterval }, app.callback());
  // Only while the request arrives: a response, such as a live HTTP-FLV one, is not timed.
  server.requestTimeout = requestTimeout;
  server.keepAliveTimeout = config.httpKeepAliveTimeoutSeconds * 1000;
  server.maxConnections = config.httpMaxConnections;
  const stats: HttpStats = { connectionsRefused: 0, clientErrors: Object.create(null) as Record<string, number> };
  server.on('drop', () => stats.connectionsRefused++);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, stats));
  await listenOn(server, config.httpBind, 'http-bind');
  return {
    address: () => server.address() as AddressInfo,
    stats,
    close: (graceMs) =>
      new Promise((resolve) => {
        const deadline = setTimeout(() => server.closeAllConnections(), graceMs).unref();
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
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
  stats.clientErrors[reason] = (stats.clientErrors[reason] ?? 0) + 1;
  // As Node's own handler: answer only when no response has started on the connection.
  const response = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
  if (reason === 'aborted' || !socket.writable || response?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, message] = timedOut
    ? ['408 Request Timeout', 'the request did not arrive in time']
    : ['400 Bad Request', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code: reason, message } });
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
