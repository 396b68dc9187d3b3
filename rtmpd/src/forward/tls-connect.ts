// RTMPS destinations: loaded only when a forward rule names one, so a server
// without them never loads node:tls for it (idle memory, README "Where the
// memory goes"). The destination's certificate is verified against Node's
// bundled Mozilla roots (tls.rootCertificates, not the OS trust store), plus
// --forward-tls-ca-file's when set.
import { isIP, type Socket } from 'node:net';
import { connect, rootCertificates } from 'node:tls';
import type { Destination } from '../rtmp/client/destination.ts';

export function tlsConnector(extraCa: string | undefined): (destination: Destination) => Socket {
  const ca = extraCa === undefined ? undefined : [...rootCertificates, extraCa];
  return ({ host, port }) =>
    connect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...(ca ? { ca } : {}), rejectUnauthorized: true });
}
