import { describe, expect, it } from 'vitest';
import { cidrList, isTrusted, trustedSources } from './trusted.ts';

describe('cidrList', () => {
  it('takes addresses and ranges up to a single address (/32, /128), and refuses longer prefixes', () => {
    const cidrs = ['10.0.0.0/8', '127.0.0.2/32', '::1/128', 'fd00::/8', '192.0.2.1'];
    expect(cidrList.parse(cidrs.join(', '))).toEqual(cidrs);
    for (const bad of ['10.0.0.0/33', '::/129', '1.2.3.4/8/8', 'proxy.local', '300.1.1.1'])
      expect(cidrList.safeParse([bad]).success, bad).toBe(false);
  });
});

describe('trustedSources', () => {
  it('trusts the addresses in its ranges and no other', () => {
    const list = trustedSources(['127.0.0.2/32', 'fd00::/8', '192.0.2.1']);
    expect(['127.0.0.2', 'fd12::1', '192.0.2.1'].map((a) => isTrusted(list, a))).toEqual([true, true, true]);
    expect(['127.0.0.3', 'fe80::1', '192.0.2.2', undefined].map((a) => isTrusted(list, a))).toEqual([false, false, false, false]);
  });
});
