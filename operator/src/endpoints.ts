// The operator's HTTP endpoints, as controller-runtime's manager serves them:
// /healthz and /readyz for the kubelet, /metrics for Prometheus (with
// --metrics-auth=kubernetes over TLS, the scraper's token reviewed by the API
// server), on one port or two.
import { createServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { hostname } from 'node:os';
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { splitBind, type Flags } from './flags.ts';
import { MetricsAuth } from './metrics-auth.ts';
import { selfSignedTlsPair, watchTlsPair } from './metrics-tls.ts';

/** How often --metrics-cert-dir is read again (two small files), as rtmpd reads its certificate. */
const METRICS_CERT_POLL_MS = 2000;

export interface EndpointsOptions {
  flags: Flags;
  kubeConfig: KubeConfig;
  registry: Registry;
  /** Why the operator is not ready (/readyz answers 503 with it), or undefined when it is. */
  notReady: () => string | undefined;
  log: Logger;
}

export interface Endpoints {
  /** Addresses actually bound (useful with port 0). */
  metricsAddress: string;
  /** https with --metrics-auth=kubernetes, so the scraper's token is never sent in clear. */
  metricsScheme: 'http' | 'https';
  healthAddress: string;
  close(): Promise<void>;
}

interface Answer {
  code: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

/** An error answer with rtmpd's API body, `{"error":{"code","message"}}`: `code` stable, `message` saying what to do. */
const errorAnswer = (code: number, error: string, message: string, headers?: Record<string, string>): Answer => ({
  code,
  type: 'application/json',
  body: JSON.stringify({ error: { code: error, message } }),
  ...(headers ? { headers } : {}),
});

/** Every path here is read-only: the kubelet and Prometheus GET them. */
const ALLOWED_METHODS = ['GET', 'HEAD'];

/** How often a failure that keeps recurring on a path is logged again, with how often it recurred meanwhile. */
const REPEATED_FAILURE_LOG_MS = 10 * 60_000;

/**
 * The log of unexpected failures of the endpoints: a failure is logged (with
 * its stack) when it starts or changes, then once every REPEATED_FAILURE_LOG_MS
 * while it lasts, and the path's recovery once. A scrape every 15 s that fails
 * is seen in the log without flooding it.
 */
function failureLog(log: Logger) {
  const last = new Map<string, { what: string; loggedAt: number; repeated: number }>();
  return {
    failed(path: string, err: unknown): void {
      const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      const now = Date.now();
      const previous = last.get(path);
      if (previous?.what === what && now - previous.loggedAt < REPEATED_FAILURE_LOG_MS) {
        previous.repeated++;
        return;
      }
      const repeated = previous?.what === what ? { repeated: previous.repeated } : {};
      log.error({ err, path, ...repeated }, `answering ${path} failed`);
      last.set(path, { what, loggedAt: now, repeated: 0 });
    },
    answered(path: string): void {
      if (!last.delete(path)) return;
      log.info({ path }, `${path} answers again`);
    },
  };
}

/** The first byte a TLS client sends: the content type of a handshake record (RFC 8446, 5.1). */
const TLS_HANDSHAKE_RECORD = 0x16;
/** How long a connection may stay silent before its first byte, or after the 400: a TLS client sends its ClientHello at once. */
const FIRST_BYTE_TIMEOUT_MS = 10_000;

/** Go's answer to plain HTTP on a TLS port, as 400 with the operator's error body; the connection closes after it. */
const plainHttpAnswer = (() => {
  const body = JSON.stringify({
    error: {
      code: 'tls_required',
      message: 'Client sent an HTTP request to an HTTPS server: with --metrics-auth=kubernetes this port speaks TLS; ask https://',
    },
  });
  return `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
})();

/**
 * The listener of a TLS port: a plain TCP server that reads each connection's
 * first byte. A TLS client's starts a handshake record, and its connection,
 * that byte put back, is handed to `https` (which never listens itself) as
 * http servers take injected connections, so TLS, keep-alive and the timeouts
 * stay the https server's. Anything else is plain HTTP (a scrape configured
 * with http://) and gets Go's 400, where Node's TLS server would close the
 * connection without a word and the client report an empty reply.
 */
function tlsListener(https: HttpsServer): NetServer {
  const listener = createNetServer({ noDelay: true }, (socket) => {
    const dropped = () => socket.destroy();
    socket.on('error', dropped).setTimeout(FIRST_BYTE_TIMEOUT_MS, dropped);
    socket.once('data', (first: Buffer) => {
      if (first[0] === TLS_HANDSHAKE_RECORD) {
        socket.pause().unshift(first);
        socket.off('error', dropped).setTimeout(0).off('timeout', dropped);
        https.emit('connection', socket);
        return;
      }
      // The rest of the request is read and dropped, so the client gets the answer and a close, not a reset.
      socket.end(plainHttpAnswer).resume();
    });
  });
  // Node's http server starts the list of connections that its headersTimeout, requestTimeout and
  // closeIdleConnections() work from when it emits 'listening', which one that never listens does not.
  // Without it a slow client is never timed out and close() waits out every idle keep-alive connection.
  listener.once('listening', () => https.emit('listening'));
  return listener;
}

/** A port the operator cannot listen on (or serve TLS on); the message names the flag that set it. */
export class ListenError extends Error {
  override name = 'ListenError';
}

function listen(server: NetServer, bind: string, flag: string): Promise<string> {
  const { host, port } = splitBind(bind);
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new ListenError(`cannot listen on ${bind} (--${flag}): the address is already in use`) : err),
    );
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    });
  });
}

export async function serveEndpoints({ flags, kubeConfig: kc, registry, notReady, log }: EndpointsOptions): Promise<Endpoints> {
  const metricsAuth =
    flags.metricsAuth === 'kubernetes'
      ? new MetricsAuth({ authn: kc.makeApiClient(AuthenticationV1Api), authz: kc.makeApiClient(AuthorizationV1Api) })
      : undefined;

  const handler = async (path: string, authorization: string | undefined): Promise<Answer> => {
    if (path === '/metrics' && metricsAuth) {
      const auth = await metricsAuth.check(authorization, path);
      if (auth.code !== 200)
        return errorAnswer(auth.code, auth.error, auth.message, auth.challenge ? { 'www-authenticate': auth.challenge } : undefined);
    }
    if (path === '/healthz') return { code: 200, type: 'text/plain', body: 'ok' };
    if (path === '/readyz') {
      const problem = notReady();
      return problem ? { code: 503, type: 'text/plain', body: problem } : { code: 200, type: 'text/plain', body: 'ok' };
    }
    return { code: 200, type: registry.contentType, body: await registry.metrics() };
  };
  const failures = failureLog(log);
  /** The answer to a request, never a rejection: an unexpected failure is logged and answered 500 without its details. */
  const answer = async (paths: string[], method: string, path: string, authorization: string | undefined): Promise<Answer> => {
    if (!paths.includes(path)) return errorAnswer(404, 'not_found', `no route for ${method} ${path}; this port serves ${paths.join(', ')}`);
    if (!ALLOWED_METHODS.includes(method))
      return errorAnswer(405, 'method_not_allowed', `${path} takes ${ALLOWED_METHODS.join(', ')}, not ${method}`, {
        allow: ALLOWED_METHODS.join(', '),
      });
    try {
      const result = await handler(path, authorization);
      failures.answered(path);
      return result;
    } catch (err) {
      failures.failed(path, err);
      return errorAnswer(500, 'internal_error', `internal server error; the operator's log says why`);
    }
  };
  // With token authentication the metrics port speaks TLS (also for /healthz and /readyz when they share it).
  // A renewed Secret is served from the next connection on, without a restart.
  const secureServers: HttpsServer[] = [];
  const certificate =
    metricsAuth && flags.metricsCertDir
      ? await watchTlsPair({ dir: flags.metricsCertDir, servers: secureServers, log, intervalMs: METRICS_CERT_POLL_MS }).catch(
          (err: unknown) => {
            throw new ListenError(`cannot serve /metrics over HTTPS: ${err instanceof Error ? err.message : String(err)}`);
          },
        )
      : undefined;
  const tls = metricsAuth ? (certificate?.value ?? selfSignedTlsPair(['localhost', '127.0.0.1', '::1', hostname()])) : undefined;
  const makeServer = (paths: string[], secure: boolean) => {
    const serve: RequestListener = (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      void answer(paths, req.method ?? 'GET', path, req.headers.authorization).then((r) =>
        res.writeHead(r.code, { ...r.headers, 'content-type': r.type }).end(r.body),
      );
    };
    if (!secure || !tls) return createServer(serve);
    const server = createHttpsServer(tls, serve);
    secureServers.push(server);
    return tlsListener(server);
  };
  const metricsScheme = tls ? 'https' : 'http';
  const servers: NetServer[] = [];
  let metricsAddress: string;
  let healthAddress: string;
  if (flags.metricsBind === flags.healthBind) {
    const s = makeServer(['/metrics', '/healthz', '/readyz'], true);
    servers.push(s);
    metricsAddress = healthAddress = await listen(s, flags.metricsBind, 'metrics-bind');
  } else {
    const m = makeServer(['/metrics'], true);
    const h = makeServer(['/healthz', '/readyz'], false);
    servers.push(m, h);
    metricsAddress = await listen(m, flags.metricsBind, 'metrics-bind');
    healthAddress = await listen(h, flags.healthBind, 'health-bind');
  }
  return {
    metricsAddress,
    metricsScheme,
    healthAddress,
    async close() {
      certificate?.close();
      const closed = Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      // Their idle keep-alive connections are closed now, as a listening https server's close() closes them.
      for (const s of secureServers) s.close();
      await closed;
    },
  };
}
