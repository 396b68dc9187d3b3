// The client of a request that came through HTTP reverse proxies (an
// Ingress controller, nginx) rtmpd trusts (--http-forwarded-from): the
// right-most address in Forwarded (RFC 7239), or X-Forwarded-For when there
// is no Forwarded, that is not itself a trusted proxy. Each proxy appends the
// address it was reached from, so the entries left of the last untrusted one
// are whatever the client wrote, and never believed. A request from any
// other peer keeps the peer's address. Koa's own `app.proxy` would believe
// the left-most entry from any peer, so it stays off.
import { isIP, type BlockList } from 'node:net';
import type Koa from 'koa';
import { isTrusted } from '../connections/trusted.ts';

/** The address a Forwarded `for=` value names, or undefined for `unknown`, an obfuscated name or garbage. */
function forwardedFor(element: string): string | undefined {
  const pair = element
    .split(';')
    .map((p) => p.trim())
    .find((p) => p.toLowerCase().startsWith('for='));
  if (pair === undefined) return undefined;
  const value = pair.slice(4).replace(/^"(.*)"$/, '$1');
  // "[2001:db8::1]:4711", "192.0.2.43:47011", "192.0.2.43", "2001:db8::1" (unquoted IPv6 is not valid, but seen).
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  const address = bracketed ? bracketed[1]! : isIP(value) ? value : value.replace(/:\d+$/, '');
  return isIP(address) ? address : undefined;
}

/** The addresses a request's proxy headers list, client first; Forwarded wins over X-Forwarded-For. */
function forwardedChain(forwarded: string | undefined, xForwardedFor: string | undefined): (string | undefined)[] {
  if (forwarded) return forwarded.split(',').map(forwardedFor);
  if (xForwardedFor) return xForwardedFor.split(',').map((a) => (isIP(a.trim()) ? a.trim() : undefined));
  return [];
}

/**
 * Walks the chain from the right, from the peer: each trusted hop vouches
 * for the one before it. The first hop that is not trusted is the client;
 * an entry that names no address ends the walk at the hop that wrote it.
 */
export function clientOf(peer: string, trusted: BlockList, forwarded?: string, xForwardedFor?: string): string {
  let client = peer;
  const chain = forwardedChain(forwarded, xForwardedFor);
  for (let i = chain.length - 1; i >= 0 && isTrusted(trusted, client); i--) {
    const hop = chain[i];
    if (hop === undefined) break;
    client = hop;
  }
  return client;
}

/** Sets each request's ctx.ip, which the auth checks, HLS and traces read, to its client behind trusted proxies. */
export function forwardedClient(trusted: BlockList): Koa.Middleware {
  return (ctx, next) => {
    const peer = ctx.req.socket.remoteAddress ?? '';
    if (isTrusted(trusted, peer)) ctx.request.ip = clientOf(peer, trusted, ctx.get('forwarded'), ctx.get('x-forwarded-for'));
    return next();
  };
}
