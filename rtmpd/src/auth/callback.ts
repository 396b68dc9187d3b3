// The `callback` method: rtmpd POSTs each publish and play to a URL of yours
// and does what it answers. The body is JSON:
//   {"action":"publish","app":"live","key":"cam1","query":"token=...","client_ip":"203.0.113.7","protocol":"rtmp","tls":true}
// `protocol` names the protocol family (rtmp, http-flv, hls), as MediaMTX's
// external authentication does, so a script testing protocol == "rtmp" takes
// RTMPS as well; `tls` says whether the client came over TLS (RTMPS, HTTPS).
// A 2xx answer allows; 401 and 403 refuse; anything else, a timeout or an
// unreachable service refuses too unless the rule says failOpen. Definite
// answers (2xx, 401, 403) are reused for `cacheSeconds`, so a reconnecting
// encoder does not hammer the service. At most MAX_IN_FLIGHT requests of a
// rule are out at once, and MAX_WAITING more wait their turn within the
// timeout; beyond them a request is refused as callback_busy.
import type { AuthAction } from './rules.ts';

/** Answers kept at once; the oldest is dropped first. */
const MAX_CACHED = 1000;
/**
 * The bodies of the kept answers, in bytes, at most: a query may be about
 * 64 KiB, so 1,000 of those would be 64 MB. V8 keeps a string at one or two
 * bytes a character, so a body counts two a character. Bodies of normal
 * size (a few hundred bytes) reach MAX_CACHED long before this.
 */
const MAX_CACHED_BYTES = 4 * 1024 * 1024;

const cachedBytes = (body: string) => 2 * body.length;

/**
 * Requests to the service at once, per rule. Without a bound, clients that
 * play (or publish) what the cache does not hold, each with another query,
 * had rtmpd open a connection to the service for each: 16 pipelined HTTP-FLV
 * or HLS requests on each of --http-max-connections connections, more
 * sockets than the process has descriptors, and as many requests at once
 * at the service.
 */
const MAX_IN_FLIGHT = 64;
/**
 * Requests waiting for a turn. One more is refused at once, failOpen or not:
 * a flood must not be a way in.
 */
const MAX_WAITING = 1024;

export interface CallbackRequest {
  action: AuthAction;
  app: string;
  key: string;
  query: string;
  clientIp: string;
  protocol: string;
  tls: boolean;
  signal: AbortSignal;
}

export type CallbackVerdict = 'ok' | 'callback_denied' | 'callback_failed' | 'callback_busy';

export interface CallbackOptions {
  timeoutMs: number;
  cacheSeconds: number;
}

export class CallbackClient {
  private readonly url: () => string;
  private readonly options: CallbackOptions;
  private readonly cache = new Map<string, { verdict: 'ok' | 'callback_denied'; until: number }>();
  private bytes = 0;
  private inFlight = 0;
  /** Each waiting request's start, called when a request ahead of it is done. */
  private readonly waiting: (() => void)[] = [];

  /** `url` is read per request: it may come from a file that changes. */
  constructor(url: () => string, options: CallbackOptions) {
    this.url = url;
    this.options = options;
  }

  async ask(request: CallbackRequest): Promise<{ verdict: CallbackVerdict; detail?: string }> {
    const body = JSON.stringify({
      action: request.action,
      app: request.app,
      key: request.key,
      query: request.query,
      client_ip: request.clientIp,
      protocol: request.protocol,
      tls: request.tls,
    });
    const now = Date.now();
    const cached = this.cache.get(body);
    if (cached && cached.until > now) return { verdict: cached.verdict };
    if (cached) this.forget(body);
    const noAnswer = `no answer in ${this.options.timeoutMs} ms`;
    const deadline = AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), request.signal]);
    const turn = await this.turn(deadline);
    if (turn === 'busy')
      return { verdict: 'callback_busy', detail: `${MAX_IN_FLIGHT + MAX_WAITING} requests to the service are out or waiting` };
    if (turn === 'aborted') return { verdict: 'callback_failed', detail: `${noAnswer} (waited for a turn)` };
    let status: number;
    try {
      const response = await fetch(this.url(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        redirect: 'error',
        signal: deadline,
      });
      status = response.status;
      await response.body?.cancel();
    } catch (err) {
      const timedOut = (err as Error).name === 'TimeoutError';
      return { verdict: 'callback_failed', detail: timedOut ? noAnswer : (err as Error).message };
    } finally {
      this.done();
    }
    const verdict = status >= 200 && status < 300 ? 'ok' : status === 401 || status === 403 ? 'callback_denied' : undefined;
    if (!verdict) return { verdict: 'callback_failed', detail: `answered ${status}` };
    if (this.options.cacheSeconds > 0) this.keep(body, { verdict, until: now + this.options.cacheSeconds * 1000 });
    return { verdict };
  }

  /** A request's turn to go out: at once, after those ahead of it, or not (too many waiting, or `signal` aborted while it waited). */
  private turn(signal: AbortSignal): Promise<'go' | 'busy' | 'aborted'> {
    if (this.inFlight < MAX_IN_FLIGHT) {
      this.inFlight++;
      return Promise.resolve('go');
    }
    if (this.waiting.length >= MAX_WAITING) return Promise.resolve('busy');
    return new Promise((resolve) => {
      // Takes over the slot of the request that is done.
      const start = (): void => {
        signal.removeEventListener('abort', giveUp);
        resolve('go');
      };
      const giveUp = (): void => {
        this.waiting.splice(this.waiting.indexOf(start), 1);
        resolve('aborted');
      };
      signal.addEventListener('abort', giveUp, { once: true });
      this.waiting.push(start);
    });
  }

  /** A request is done: the first waiting one goes out in its place. */
  private done(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }

  /** Caches an answer, dropping the oldest until both MAX_CACHED and MAX_CACHED_BYTES hold. */
  private keep(body: string, answer: { verdict: 'ok' | 'callback_denied'; until: number }): void {
    if (cachedBytes(body) > MAX_CACHED_BYTES) return;
    this.forget(body); // asked twice at once: the second answer replaces the first
    while (this.cache.size >= MAX_CACHED || this.bytes + cachedBytes(body) > MAX_CACHED_BYTES) {
      this.forget(this.cache.keys().next().value as string);
    }
    this.cache.set(body, answer);
    this.bytes += cachedBytes(body);
  }

  private forget(body: string): void {
    if (this.cache.delete(body)) this.bytes -= cachedBytes(body);
  }
}
