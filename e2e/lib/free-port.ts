import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The lowest port picked: below it are the ports services usually listen on. */
const LOWEST = 10_000;

/** The kernel's ephemeral range: where listen(0) and every outgoing connection without a bind take their port. */
export function ephemeralRange(): [number, number] {
  const [low = 32_768, high = 60_999] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return [low, high];
}

/** Ports this process has handed out: two servers started together never get the same. */
const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 free right now, for servers that cannot report an
 * ephemeral one. It is picked outside the ephemeral range: a port from there
 * (what listen(0) gives) can go to any outgoing connection on the machine
 * between this check and the server's bind, one outside it only to a bind.
 */
export async function freePort(): Promise<number> {
  const [low, high] = ephemeralRange();
  const below = Math.max(0, low - LOWEST);
  const above = Math.max(0, 65_535 - high);
  for (let tries = 0; tries < 100; tries++) {
    const pick = Math.floor(Math.random() * (below + above));
    const port = pick < below ? LOWEST + pick : high + 1 + (pick - below);
    if (!handedOut.has(port) && (await bindable(port))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on 127.0.0.1 outside the ephemeral range ${low}-${high} after 100 tries`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
