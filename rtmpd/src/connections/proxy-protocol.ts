// The PROXY protocol on rtmpd's listeners (--proxy-protocol): a connection
// from a trusted source (--proxy-protocol-from, the load balancer) to a
// listener that expects headers must start with one, and the client it names
// becomes the socket's address, the one everything reads (logs, limits,
// auth, the API, webhooks, traces). Other sources' connections are not read
// for a header: rtmpd never takes an address from a peer it does not trust,
// and the bytes of a forged header fail the RTMP or TLS handshake or the
// HTTP parser. A trusted connection that sends a bad header, or none within
// --proxy-protocol-timeout-seconds, is logged, counted and closed: apart, one
// that sent nothing at all (idle_no_header), as a health check that holds its
// connection does (HAProxy's tcp-check waiting for a banner), from one whose
// header stopped half-way (proxy_header_timeout). A balancer that does not
// send the protocol is bad_proxy_header: its clients speak first (RTMP C0,
// a TLS ClientHello, an HTTP request line).
import type { BlockList, Socket } from 'node:net';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { commaList, ConfigError } from '../options.ts';
import { FaultLog, type FaultLogger } from '../telemetry/fault-log.ts';
import type { ConnectionRefusal } from '../telemetry/metrics.ts';
import { isTrusted, trustedSources } from './trusted.ts';
import { ProxyHeaderError, ProxyHeaderReader, type ProxyHeader } from './proxy-header.ts';

const proxyListeners = ['rtmp', 'rtmps', 'http', 'https'] as const;
export type ProxyListener = (typeof proxyListeners)[number];

/** The listeners that expect headers (config.ts's proxyProtocol): a list, or one string separated by commas. */
export const proxyListenerList = commaList(z.enum(proxyListeners), proxyListeners.length);

export type ProxyConfig = Pick<Config, 'proxyProtocol' | 'proxyProtocolFrom' | 'proxyProtocolTimeoutSeconds'>;

const ignore = (): void => undefined;

/** What becomes of a connection whose header is awaited: exactly one follows. */
export interface HeaderOutcome {
  /** The header was read and its client is the socket's address now; `rest` followed it in the same read (valid during the call). */
  done(rest: Buffer): void;
  /** The connection was closed: a bad header or none in time (counted), or the peer hung up. */
  failed(): void;
}

export class ProxyProtocol {
  private readonly config: ProxyConfig;
  private readonly trusted: BlockList;
  /** Limits the refusals' lines: a misconfigured balancer makes one per connection. */
  private readonly faults: FaultLog;

  constructor(config: ProxyConfig, logger: FaultLogger) {
    if (config.proxyProtocol.length > 0 && config.proxyProtocolFrom.length === 0)
      throw new ConfigError('--proxy-protocol is set, so --proxy-protocol-from must name the load balancers it trusts');
    this.config = config;
    this.trusted = trustedSources(config.proxyProtocolFrom);
    this.faults = new FaultLog(logger);
  }

  /** Whether a connection accepted on `listener` must start with a header: the listener expects them and the peer is trusted. */
  expects(listener: ProxyListener, socket: Socket): boolean {
    return this.config.proxyProtocol.includes(listener) && isTrusted(this.trusted, socket.remoteAddress);
  }

  /**
   * Awaits the header of `socket` in the reads given to the returned
   * function (a socket read into a shared buffer passes its reads on).
   * Refusals are counted in `refused`.
   */
  awaitHeader(
    socket: Socket,
    listener: ProxyListener,
    refused: Record<ConnectionRefusal, number>,
    outcome: HeaderOutcome,
  ): (bytes: Buffer) => void {
    const reader = new ProxyHeaderReader();
    const balancer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    let settled = false;
    let received = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      socket.off('close', hungUp);
      socket.off('error', ignore);
      return true;
    };
    const refuse = (reason: ConnectionRefusal, message: string, detail?: string): void => {
      if (!settle()) return;
      refused[reason]++;
      this.faults.log('info', { listener, balancer, reason, ...(detail ? { detail } : {}) }, message);
      socket.destroy();
      outcome.failed();
    };
    const hungUp = (): void => {
      if (settle()) outcome.failed();
    };
    const timer = setTimeout(() => {
      if (received)
        refuse(
          'proxy_header_timeout',
          'proxy protocol: the header was not finished in time (--proxy-protocol-timeout-seconds), connection closed',
        );
      else refuse('idle_no_header', 'proxy protocol: nothing received in time (--proxy-protocol-timeout-seconds), connection closed');
    }, this.config.proxyProtocolTimeoutSeconds * 1000);
    timer.unref();
    socket.once('close', hungUp);
    // A reset before the header is done is a hang-up ('close' follows); with no listener it would crash rtmpd.
    socket.on('error', ignore);
    return (bytes) => {
      if (settled) return;
      received ||= bytes.length > 0;
      let read;
      try {
        read = reader.push(bytes);
      } catch (err) {
        if (!(err instanceof ProxyHeaderError)) throw err;
        refuse('bad_proxy_header', `proxy protocol: ${err.message}, connection closed`, err.fault);
        return;
      }
      if (read === undefined || !settle()) return;
      useClientAddress(socket, read.header);
      outcome.done(read.rest);
    };
  }

  /**
   * Awaits the header of a socket read the ordinary way ('data' events); on
   * `done` the socket is paused with the bytes that followed the header put
   * back, for whatever reads it next (a TLS handshake, the HTTP parser).
   */
  readHeader(socket: Socket, listener: ProxyListener, refused: Record<ConnectionRefusal, number>, outcome: HeaderOutcome): void {
    const onData = this.awaitHeader(socket, listener, refused, {
      done: (rest) => {
        socket.off('data', onData);
        socket.pause();
        if (rest.length > 0) socket.unshift(rest);
        outcome.done(rest);
      },
      failed: () => {
        socket.off('data', onData);
        outcome.failed();
      },
    });
    socket.on('data', onData);
  }
}

/** What follows no header: a connection whose client is known at accept. */
const NO_BYTES = Buffer.alloc(0);

/**
 * Runs `start` once a new connection's client is known: at once, or after
 * the PROXY header a trusted balancer sends first, which `readHeader` reads
 * the way the listener reads its connections (`start` gets what followed it
 * in the same read). While its header is awaited the socket is in `pending`,
 * so a listener that closes can end it.
 */
export function whenClientKnown(
  proxy: ProxyProtocol | undefined,
  socket: Socket,
  listener: ProxyListener,
  pending: Set<Socket>,
  readHeader: (proxy: ProxyProtocol, outcome: HeaderOutcome) => void,
  start: (rest: Buffer) => void,
): void {
  // No address: the peer reset the connection before it was accepted (a
  // balancer's TCP health check does), so there is no client to serve, and
  // an untrusted-looking socket would have its PROXY header read as RTMP or HTTP.
  if (proxy && socket.remoteAddress === undefined) return void socket.destroy();
  if (!proxy?.expects(listener, socket)) return start(NO_BYTES);
  pending.add(socket);
  readHeader(proxy, {
    done: (rest) => {
      pending.delete(socket);
      start(rest);
    },
    failed: () => pending.delete(socket),
  });
}

/**
 * Makes the client a header names the socket's address: the one place
 * rtmpd reads a connection's client from (socket.remoteAddress and
 * remotePort, shadowed on this socket only). `local` keeps the balancer's.
 */
function useClientAddress(socket: Socket, header: ProxyHeader): void {
  if (header.kind !== 'proxied') return;
  Object.defineProperties(socket, {
    remoteAddress: { value: header.address, configurable: true },
    remotePort: { value: header.port, configurable: true },
    remoteFamily: { value: header.family, configurable: true },
  });
}

/** A TLS socket made over `raw` answers for the client `raw` was given (Node's would ask the kernel for the balancer's). */
export function keepClientAddress(raw: Socket, secured: Socket): void {
  const own = Object.getOwnPropertyDescriptors(raw);
  for (const key of ['remoteAddress', 'remotePort', 'remoteFamily'] as const) {
    if (own[key]) Object.defineProperty(secured, key, own[key]);
  }
}
