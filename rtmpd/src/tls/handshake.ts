// The server side of a TLS handshake on an accepted TCP connection. The
// connection gets the certificate in use when it was accepted, has
// --tls-handshake-timeout-seconds to finish, and a handshake that fails
// (plain RTMP or HTTP sent to the TLS port, an old protocol, a client that
// refuses the certificate, a peer that hangs up) is closed, logged and
// counted by reason. Handshakes still running when rtmpd shuts down are closed
// uncounted: no client failed. Until the handshake is done OpenSSL holds at
// most one TLS record (16 KiB) of what the peer sent.
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Config } from '../config.ts';
import { keepClientAddress } from '../connections/proxy-protocol.ts';
import { FaultLog } from '../telemetry/fault-log.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ServerCertificate } from './certificate.ts';

export type TlsListener = 'rtmps' | 'https';

/** Why handshakes failed; exported at 0 from the start so alerts have a series. */
const HANDSHAKE_FAILURES = ['timeout', 'not_tls', 'protocol_version', 'certificate_refused', 'aborted', 'other'] as const;
export type HandshakeFailure = (typeof HANDSHAKE_FAILURES)[number];

export interface HandshakeStats {
  /** Handshakes completed, by listener. */
  handshakes: Record<TlsListener, number>;
  /** Handshakes failed, by listener and reason. */
  handshakeFailures: Record<TlsListener, Record<HandshakeFailure, number>>;
}

function createHandshakeStats(): HandshakeStats {
  const zeros = () => Object.fromEntries(HANDSHAKE_FAILURES.map((reason) => [reason, 0])) as Record<HandshakeFailure, number>;
  return { handshakes: { rtmps: 0, https: 0 }, handshakeFailures: { rtmps: zeros(), https: zeros() } };
}

/** OpenSSL's reasons (Node's ERR_SSL_<REASON> codes) by what they mean for an operator. */
export function handshakeFailureOf(code: string | undefined): HandshakeFailure {
  if (code === undefined) return 'other';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'aborted';
  // A first byte that is no TLS record: RTMP's C0 (3), an HTTP method, noise.
  if (
    /WRONG_VERSION_NUMBER|HTTP_REQUEST|HTTPS_PROXY_REQUEST|PACKET_LENGTH_TOO_LONG|RECORD_LENGTH_MISMATCH|UNEXPECTED_RECORD|BAD_PACKET/.test(
      code,
    )
  )
    return 'not_tls';
  if (/UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW|PROTOCOL_VERSION|NO_SHARED_CIPHER|NO_PROTOCOLS_AVAILABLE/.test(code)) return 'protocol_version';
  if (/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_|DECRYPT_ERROR|ACCESS_DENIED)/.test(code)) return 'certificate_refused';
  return 'other';
}

const explanations: Record<HandshakeFailure, string> = {
  timeout: 'no handshake within --tls-handshake-timeout-seconds',
  not_tls: 'the client does not speak TLS (plain RTMP or HTTP sent to a TLS port?)',
  protocol_version: 'the client offers no TLS version or cipher rtmpd accepts (TLS 1.2 is the least)',
  certificate_refused: "the client refused rtmpd's certificate",
  aborted: 'the client hung up during the handshake',
  other: 'the handshake failed',
};

export interface HandshakeOutcome {
  /** The handshake is done: the socket reads and writes plain bytes now. */
  secured(socket: TLSSocket): void;
  /** The connection was closed before its handshake was done (and counted, unless at shutdown). */
  failed(): void;
}

export class TlsHandshakes {
  readonly stats = createHandshakeStats();
  private readonly certificate: ServerCertificate;
  private readonly config: Pick<Config, 'tlsHandshakeTimeoutSeconds'>;
  /** Limits the failed handshakes' lines: a scanner makes one per connection. */
  private readonly faults: FaultLog;
  /** Each handshake in progress, with what ends it uncounted. */
  private readonly pending = new Map<TLSSocket, () => void>();

  constructor(certificate: ServerCertificate, config: Pick<Config, 'tlsHandshakeTimeoutSeconds'>, logger: Logger) {
    this.certificate = certificate;
    this.config = config;
    this.faults = new FaultLog(logger);
  }

  /** Runs the server side of a handshake on `raw`, which is not read from any more; the returned socket replaces it. */
  accept(raw: Socket, listener: TlsListener, outcome: HandshakeOutcome): TLSSocket {
    const remote = `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? 0}`;
    const socket = new TLSSocket(raw, { isServer: true, secureContext: this.certificate.value.context });
    keepClientAddress(raw, socket);
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      this.pending.delete(socket);
      return true;
    };
    const fail = (reason: HandshakeFailure, detail?: string): void => {
      if (!settle()) return;
      this.stats.handshakeFailures[listener][reason]++;
      this.faults.log('info', { listener, remote, reason, ...(detail ? { detail } : {}) }, `tls handshake failed: ${explanations[reason]}`);
      socket.destroy();
      outcome.failed();
    };
    const end = (): void => {
      if (!settle()) return;
      socket.destroy();
      outcome.failed();
    };
    const timer = setTimeout(() => fail('timeout'), this.config.tlsHandshakeTimeoutSeconds * 1000);
    timer.unref();
    socket.on('error', (err: NodeJS.ErrnoException) => fail(handshakeFailureOf(err.code), err.code));
    socket.once('close', () => fail('aborted'));
    socket.once('secure', () => {
      if (!settle()) return;
      this.stats.handshakes[listener]++;
      outcome.secured(socket);
    });
    this.pending.set(socket, end);
    return socket;
  }

  /**
   * Shutdown, right before the listeners close (so none starts after): ends
   * every handshake in progress without counting or logging it, since no
   * client failed.
   */
  close(): void {
    for (const end of [...this.pending.values()]) end();
  }
}
