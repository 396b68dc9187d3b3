// The requests one pod of a fleet makes to another's HTTP port (under
// /fleet/v1, with the fleet token): answers read whole and bounded (stream
// lists, recording pages, snapshots), answers passed on as they come
// (recording downloads), and the health probe a claim's take-over asks. Each
// is cut when its peer stays silent past its timeout or when the client it
// is made for goes away (`signal`), so no peer request outlives its use.
// Relays pull their FLV in relays.ts, a stream of their own.
import type { IncomingMessage } from 'node:http';
import { splitHostPort } from '../config.ts';
import { request } from '../http/required-modules.ts';
import type { ForwardedAnswer } from '../http/streams-api.ts';

/** A pod's stream list or snapshot larger than this is refused (a JPEG or a few thousand streams fit). */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

export interface PeerRequest {
  token: string;
  /** The peer may stay silent this long (waiting for its answer, or within it). */
  timeoutMs: number;
  /** Aborted when the client the request is made for goes away. */
  signal?: AbortSignal | undefined;
}

/** Sends a request to another pod; its response as it comes, or undefined when the pod does not answer (or the client left). */
export function fleetRequest(
  address: string,
  method: string,
  path: string,
  { token, timeoutMs, signal, headers = {} }: PeerRequest & { headers?: Record<string, string> },
): Promise<IncomingMessage | undefined> {
  return new Promise((resolve) => {
    const req = request(
      { ...splitHostPort(address), method, path, headers: { authorization: `Bearer ${token}`, ...headers }, timeout: timeoutMs, signal },
      resolve,
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** GETs a fleet path on another pod; undefined when it does not answer in time, answers more than `maxBytes`, or the client left. */
export async function fleetGet(
  address: string,
  path: string,
  { maxBytes = MAX_ANSWER_BYTES, ...peer }: PeerRequest & { maxBytes?: number },
): Promise<ForwardedAnswer | undefined> {
  const res = await fleetRequest(address, 'GET', path, peer);
  if (!res) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    // Ends with an error when the response is cut short: a timeout, an abort, the peer gone.
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      // Leaving the loop destroys the response, and with it the connection.
      if (size > maxBytes) return undefined;
      chunks.push(chunk);
    }
  } catch {
    return undefined;
  }
  const retryAfter = res.headers['retry-after'];
  return {
    status: res.statusCode ?? 502,
    type: res.headers['content-type'] ?? 'application/octet-stream',
    body: Buffer.concat(chunks),
    headers: typeof retryAfter === 'string' ? { 'Retry-After': retryAfter } : {},
  };
}

/** Whether a pod's HTTP port answers /health within a second (a process that died refuses at once). */
export async function answers(address: string): Promise<boolean> {
  return (await fleetGet(address, '/health', { token: '', timeoutMs: 1000 }))?.status === 200;
}
