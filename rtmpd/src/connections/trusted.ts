// Trusted sources: the load balancers and reverse proxies whose word on a
// client's address rtmpd takes (--proxy-protocol-from, --http-forwarded-from),
// as a list of addresses and CIDR ranges.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { commaList } from '../options.ts';

/** An address or a CIDR range of either family. */
function isCidr(text: string): boolean {
  const [address = '', bits, ...more] = text.split('/');
  const max = isIPv4(address) ? 32 : isIPv6(address) ? 128 : -1;
  return more.length === 0 && max >= 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max));
}

/** Trusted sources (config.ts's proxyProtocolFrom, httpForwardedFrom): a list, or one string separated by commas. */
export const cidrList = commaList(
  z
    .string()
    .max(49)
    .regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'expected an address or a CIDR range, e.g. 10.0.0.0/8 or fd00::/8')
    .refine(isCidr, 'expected an address or a CIDR range, e.g. 10.0.0.0/8 or fd00::/8'),
  256,
);

/** A matcher for a list of CIDRs (or single addresses); IPv4-mapped IPv6 peers match IPv4 ranges. */
export function trustedSources(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', bits] = cidr.split('/');
    const type = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

/** Whether `address` (a peer's, as Node writes it) is in `list`. */
export function isTrusted(list: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}
