import { describe, expect, it } from 'vitest';
import { addressKey, PerAddress } from './per-address.ts';

describe('addressKey', () => {
  it('keys IPv4 by address and IPv6 by its /64, however it is written', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    const sameHost = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:0:0:0:9', 'fe80::1%eth0'];
    expect(new Set(sameHost.slice(0, 3).map(addressKey))).toEqual(new Set(['2001:db8:1:2::/64']));
    expect(addressKey(sameHost[3])).toBe('fe80:0:0:0::/64');
    expect(addressKey('2001:db8:1:3::1')).not.toBe(addressKey('2001:db8:1:2::1'));
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
  });
});

describe('PerAddress', () => {
  it('refuses a connection past the limit of its address only', () => {
    const open = new PerAddress();
    expect([1, 2, 3].map(() => open.add('a', 2))).toEqual([true, true, false]);
    expect(open.add('b', 2)).toBe(true);
    open.remove('a');
    expect(open.add('a', 2)).toBe(true);
    // 0 means no limit.
    expect(Array.from({ length: 100 }, () => open.add('c', 0)).every(Boolean)).toBe(true);
  });
});
