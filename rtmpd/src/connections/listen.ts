import type { Server } from 'node:net';
import { splitHostPort } from '../config.ts';

/** A listener could not take its address; the message names the option that set it. */
export class ListenError extends Error {
  override name = 'ListenError';
}

/** Why an address cannot be listened on, for the errors an operator can fix. */
const CAUSES: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EADDRNOTAVAIL: 'the address is not one of this host',
  EACCES: 'the port needs privileges rtmpd does not have',
};

/**
 * Connections the kernel completes and queues for a listener before it
 * drops new ones' SYNs (Linux caps it at net.core.somaxconn, 4096 by
 * default). Node asks for 511: a storm of players reconnecting at once
 * overflowed it, and a dropped SYN is retried only after 1, 3, 7, 15 s, for
 * the players and for the kubelet's probe alike.
 */
const LISTEN_BACKLOG = 4096;

/** The error to report for a listener's `err`: a ListenError naming `option` when an operator can fix its cause. */
export function listenFailure(err: NodeJS.ErrnoException, bind: string, option: string): Error {
  const cause = CAUSES[err.code ?? ''];
  return cause ? new ListenError(`cannot listen on ${bind} (--${option}): ${cause}`) : err;
}

/** Listens on `bind` (HOST:PORT); an address that cannot be had rejects with a ListenError naming `option`. */
export function listenOn(server: Server, bind: string, option: string): Promise<void> {
  const { host, port } = splitHostPort(bind);
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => reject(listenFailure(err, bind, option));
    server.once('error', fail);
    server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', fail);
      resolve();
    });
  });
}
