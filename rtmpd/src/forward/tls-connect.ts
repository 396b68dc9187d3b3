// RTMPS destinations: loaded only when a forward rule names one, so a server
// without them never loads node:tls for it (idle memory, README "Where the
// memory goes"). The destination's certificate is verified against the roots
// Node trusts by default (its bundled Mozilla roots and NODE_EXTRA_CA_CERTS's,
// not the OS trust store unless Node is told to read it), plus
// --forward-tls-ca-file's when set: a `ca` option replaces Node's list, so the
// file's certificates are added to that list, not to the bundled roots alone.
import { isIP, type Socket } from 'node:net';
import { connect, getCACertificates } from 'node:tls';
import type { Destination } from '../rtmp/client/destination.ts';

export function tlsConnector(extraCa: string | undefined): (destination: Destination) => Socket {
  const ca = extraCa === undefined ? undefined : [...getCACertificates('default'), extraCa];
  return ({ host, port }) =>
    connect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...(ca ? { ca } : {}), rejectUnauthorized: true });
}
