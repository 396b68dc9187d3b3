// The liveness listener's thread (liveness.ts starts it): answers GET /health
// from the main thread's heartbeat, so a main event loop that is merely busy
// (a join storm) is still alive and one that is stuck is not. It imports only
// Node's http and worker_threads: every module it loaded would be a second
// copy in this thread's heap, and the whole point is that it costs little.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';

export interface LivenessWorkerData {
  /** One BigInt64: process.hrtime.bigint() at the main loop's last heartbeat. */
  heartbeat: SharedArrayBuffer;
  host: string;
  port: number;
  /** The heartbeat's age above which the main loop counts as stuck. */
  maxAgeMs: number;
}

/** What the worker tells the main thread once it listens, or why it could not. */
export type LivenessWorkerMessage = { listening: AddressInfo } | { failed: { code: string | undefined; message: string } };

/**
 * Probes are one request on a fresh connection each (the kubelet's): a few
 * connections at once are plenty, and each one open is bounded in time.
 */
const MAX_CONNECTIONS = 16;
const REQUEST_TIMEOUT_MS = 5000;

const { heartbeat, host, port, maxAgeMs } = workerData as LivenessWorkerData;
const lastBeat = new BigInt64Array(heartbeat);

const heartbeatAgeMs = () => Math.round(Number(process.hrtime.bigint() - Atomics.load(lastBeat, 0)) / 1e6);

function answer(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '').split('?')[0];
  // Errors in the body rtmpd's API uses: {"error":{"code","message"}}.
  if (path !== '/health') return reply(res, 404, { error: { code: 'not_found', message: 'this port serves GET /health only' } });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return reply(res, 405, { error: { code: 'method_not_allowed', message: `/health takes GET or HEAD, not ${req.method}` } });
  }
  const ageMs = heartbeatAgeMs();
  if (ageMs <= maxAgeMs) return reply(res, 200, { status: 'alive', heartbeatAgeMs: ageMs });
  reply(res, 503, { status: 'stuck', heartbeatAgeMs: ageMs, maxHeartbeatAgeMs: maxAgeMs });
}

function reply(res: ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 1000 }, answer);
server.maxConnections = MAX_CONNECTIONS;
const post = (message: LivenessWorkerMessage) => parentPort!.postMessage(message);
server.once('error', (err: NodeJS.ErrnoException) => post({ failed: { code: err.code, message: err.message } }));
server.listen({ host, port }, () => {
  // Loading Node's modules left garbage in this thread's heap that nothing would collect while probes come
  // (2.6 MiB; main.ts does the same for the main thread). `gc` exists under rtmpd's flags (memory/node-flags.ts).
  globalThis.gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  post({ listening: server.address() as AddressInfo });
});
