// The client behind trusted reverse proxies: the right-most untrusted entry
// of Forwarded or X-Forwarded-For, only when the peer itself is trusted, and
// never an entry left of it, whatever the client wrote there.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { trustedSources } from '../connections/trusted.ts';
import { clientOf } from './forwarded.ts';

const trusted = trustedSources(['10.0.0.0/8', 'fd00::/8']);

describe('clientOf', () => {
  it.each<[string, string, string | undefined, string | undefined, string]>([
    ['a peer that is not trusted keeps its address', '198.51.100.7', undefined, '203.0.113.9', '198.51.100.7'],
    ['a trusted peer without headers keeps its address', '10.0.0.2', undefined, undefined, '10.0.0.2'],
    ['one proxy', '10.0.0.2', undefined, '203.0.113.9', '203.0.113.9'],
    ['two proxies', '10.0.0.2', undefined, '203.0.113.9, 10.1.2.3', '203.0.113.9'],
    [
      'entries the client wrote, left of the right-most untrusted one',
      '10.0.0.2',
      undefined,
      '1.1.1.1, 8.8.8.8, 203.0.113.9',
      '203.0.113.9',
    ],
    ['a chain of trusted proxies only: the left-most', '10.0.0.2', undefined, '10.9.9.9, 10.1.2.3', '10.9.9.9'],
    ['an entry that is no address: the hop that wrote it', '10.0.0.2', undefined, '203.0.113.9, bogus, 10.1.2.3', '10.1.2.3'],
    ['IPv6 in X-Forwarded-For', 'fd00::1', undefined, '2001:db8::7', '2001:db8::7'],
    ['Forwarded', '10.0.0.2', 'for=192.0.2.60;proto=http;by=203.0.113.43', undefined, '192.0.2.60'],
    ['Forwarded with a quoted IPv6 and port', '10.0.0.2', 'for=192.0.2.60, for="[2001:db8:cafe::17]:4711"', undefined, '2001:db8:cafe::17'],
    ['Forwarded with an IPv4 and port', '10.0.0.2', 'For="192.0.2.61:8080"', undefined, '192.0.2.61'],
    ['Forwarded wins over X-Forwarded-For', '10.0.0.2', 'for=192.0.2.60', '203.0.113.9', '192.0.2.60'],
    ['Forwarded for=unknown: the hop that wrote it', '10.0.0.2', 'for=192.0.2.60, for=unknown', undefined, '10.0.0.2'],
    ['Forwarded with an obfuscated name', '10.0.0.2', 'for=_hidden', undefined, '10.0.0.2'],
    ['an IPv4-mapped trusted peer', '::ffff:10.0.0.2', undefined, '203.0.113.9', '203.0.113.9'],
  ])('%s', (_, peer, forwarded, xForwardedFor, client) => {
    expect(clientOf(peer, trusted, forwarded, xForwardedFor)).toBe(client);
  });

  it('is, behind any number of trusted proxies, the right-most untrusted entry, whatever is left of it', () => {
    const ipv4 = (first: fc.Arbitrary<number>) => fc.tuple(first, fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
    const untrusted = ipv4(fc.integer({ min: 11, max: 223 }));
    const proxy = ipv4(fc.constant(10));
    const anything = fc.oneof(
      untrusted,
      proxy,
      fc.constant('unknown'),
      fc.string({ maxLength: 20 }).filter((s) => !s.includes(',')),
    );
    fc.assert(
      fc.property(
        fc.array(anything, { maxLength: 5 }),
        untrusted,
        fc.array(proxy, { maxLength: 5 }),
        proxy,
        (forgedLeft, client, hops, peer) => {
          const header = [...forgedLeft, client, ...hops].join(', ');
          expect(clientOf(peer, trusted, undefined, header)).toBe(client);
          expect(clientOf(client, trusted, undefined, header)).toBe(client);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
