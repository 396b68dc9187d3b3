// Telling a TLS connection from a plain one without importing node:tls, which
// would load node:crypto at start in every server (see tls.ts and the bundle's
// lazy built-ins).
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** A TLSSocket's `encrypted` is always true; a plain socket has no such field. */
export function isTlsSocket(socket: Pick<Socket, 'remoteAddress'>): socket is TLSSocket {
  return (socket as Partial<TLSSocket>).encrypted === true;
}
