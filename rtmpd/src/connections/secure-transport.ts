import type { Socket } from 'node:net';

/** Turns accepted TCP connections into TLS sockets (tls/handshake.ts), for the RTMPS and HTTPS listeners. */
export interface SecureTransport {
  /** Runs the server side of the handshake on `raw`; exactly one of the outcomes follows. The returned socket replaces `raw`. */
  accept(raw: Socket, outcome: { secured(socket: Socket): void; failed(): void }): Socket;
}
