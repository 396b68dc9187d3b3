// The PROXY header reader on the headers HAProxy's specification describes
// (v1 lines, v2 IPv4, IPv6, LOCAL, UNSPEC, with TLVs), split across reads
// anywhere, and on what it must refuse: another signature, a line or header
// too long, a malformed line, a v2 header whose parts do not add up. Any
// bytes at all give a header, a wait for more, or a ProxyHeaderError, and
// never make it hold more than the bound.
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyHeaderError, ProxyHeaderReader, V2_MAX_BYTES, type ProxyHeader } from './proxy-header.ts';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: command 0x20 LOCAL / 0x21 PROXY, family and transport byte, then addresses and TLVs. */
function v2(command: number, familyTransport: number, body: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length);
  return Buffer.concat([SIGNATURE, Buffer.from([command, familyTransport]), length, body]);
}

const port = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const ipv4 = (text: string) => Buffer.from(text.split('.').map(Number));
const ipv6 = (text: string) => Buffer.from(expand(text));
/** The 16 bytes of an IPv6 address. */
function expand(text: string): number[] {
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.flatMap((g) => [Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 0xff]);
}
const tlv = (type: number, value: Buffer) => Buffer.concat([Buffer.from([type]), port(value.length), value]);

const v2Inet = (src: string, dst: string, srcPort: number, dstPort: number, tlvs = Buffer.alloc(0)) =>
  v2(0x21, 0x11, Buffer.concat([ipv4(src), ipv4(dst), port(srcPort), port(dstPort), tlvs]));
const v2Inet6 = (src: string, dst: string, srcPort: number, dstPort: number, tlvs = Buffer.alloc(0)) =>
  v2(0x21, 0x21, Buffer.concat([ipv6(src), ipv6(dst), port(srcPort), port(dstPort), tlvs]));

const RTMP_C0C1 = Buffer.concat([Buffer.from([3]), Buffer.alloc(1536, 7)]);

/** Feeds `bytes` to a reader in the given read sizes; the header and everything after it. */
function readAll(bytes: Buffer, sizes: readonly number[] = [bytes.length]): { header: ProxyHeader; after: Buffer } | undefined {
  const reader = new ProxyHeaderReader();
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]!);
    const read = reader.push(bytes.subarray(at, at + size));
    at += size;
    if (read) return { header: read.header, after: Buffer.concat([read.rest, bytes.subarray(at)]) };
  }
  return undefined;
}

const proxied = (address: string, port: number, family: 'IPv4' | 'IPv6'): ProxyHeader => ({ kind: 'proxied', address, port, family });

describe('ProxyHeaderReader', () => {
  it.each<[string, Buffer, ProxyHeader]>([
    ['v1 TCP4', Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 56324 1935\r\n'), proxied('192.0.2.7', 56324, 'IPv4')],
    ['v1 TCP6', Buffer.from('PROXY TCP6 2001:db8::7 fd00::1 65535 1935\r\n'), proxied('2001:db8::7', 65535, 'IPv6')],
    ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n'), { kind: 'local' }],
    ['v2 IPv4', v2Inet('192.0.2.7', '10.0.0.1', 56324, 1935), proxied('192.0.2.7', 56324, 'IPv4')],
    ['v2 IPv6', v2Inet6('2001:db8:0:0:1:0:0:7', 'fd00::1', 443, 1935), proxied('2001:db8::1:0:0:7', 443, 'IPv6')],
    ['v2 IPv4-mapped IPv6', v2Inet6('::ffff:c000:207', '::1', 1, 2), proxied('::ffff:192.0.2.7', 1, 'IPv6')],
    ['v2 LOCAL (a health check)', v2(0x20, 0x00, Buffer.alloc(0)), { kind: 'local' }],
    ['v2 LOCAL with addresses', v2(0x20, 0x11, Buffer.alloc(12, 1)), { kind: 'local' }],
    ['v2 PROXY UNSPEC', v2(0x21, 0x00, Buffer.alloc(0)), { kind: 'local' }],
    ['v2 PROXY UNIX', v2(0x21, 0x31, Buffer.alloc(216)), { kind: 'local' }],
    [
      "v2 IPv4 with TLVs (ALPN, AWS's VPC endpoint id, a NOOP)",
      v2Inet(
        '198.51.100.9',
        '10.0.0.1',
        4000,
        1935,
        Buffer.concat([tlv(0x01, Buffer.from('h2')), tlv(0xea, Buffer.from('\x01vpce-08d2bf15fac5001c9')), tlv(0x04, Buffer.alloc(0))]),
      ),
      proxied('198.51.100.9', 4000, 'IPv4'),
    ],
  ])('reads %s and keeps the bytes after it', (_, header, expected) => {
    const read = readAll(Buffer.concat([header, RTMP_C0C1]));
    expect(read?.header).toEqual(expected);
    expect(read?.after.equals(RTMP_C0C1)).toBe(true);
  });

  it.each<[string, Buffer, string]>([
    ['RTMP straight away (no header)', RTMP_C0C1, 'bad_signature'],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'bad_signature'],
    ['a TLS ClientHello', Buffer.from('16030100', 'hex'), 'bad_signature'],
    ['a v1 line with no end', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), 'too_long'],
    ['a v1 line of 108 bytes', Buffer.from(`PROXY TCP4 1.2.3.4 5.6.7.8 1 2${' '.repeat(76)}\r\n`), 'too_long'],
    ['a v1 line with a bad address', Buffer.from('PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n'), 'bad_v1_line'],
    ['a v1 TCP4 line with IPv6 addresses', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), 'bad_v1_line'],
    ['a v1 line with a port over 65535', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'bad_v1_line'],
    ['a v1 line with a leading zero in a port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), 'bad_v1_line'],
    ['a v1 line missing a field', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), 'bad_v1_line'],
    ['a v1 line in lower case', Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'bad_signature'],
    ['a v2 header of version 1', Buffer.concat([SIGNATURE, Buffer.from([0x11, 0x11, 0, 12]), Buffer.alloc(12)]), 'bad_v2_header'],
    ['a v2 header with command 2', Buffer.concat([SIGNATURE, Buffer.from([0x22, 0x11, 0, 12]), Buffer.alloc(12)]), 'bad_v2_header'],
    ['a v2 IPv4 header too short for its addresses', v2(0x21, 0x11, Buffer.alloc(11)), 'bad_v2_header'],
    ['a v2 IPv6 header too short for its addresses', v2(0x21, 0x21, Buffer.alloc(35)), 'bad_v2_header'],
    ['a v2 header for UDP', v2(0x21, 0x12, Buffer.alloc(12)), 'bad_v2_header'],
    ['a v2 TLV past the end', v2Inet('1.2.3.4', '5.6.7.8', 1, 2, Buffer.from([0x01, 0x00, 0x05, 0x61])), 'bad_v2_header'],
    ['a v2 TLV cut in its type and length', v2Inet('1.2.3.4', '5.6.7.8', 1, 2, Buffer.from([0x01, 0x00])), 'bad_v2_header'],
    ['a v2 header over the bound', v2Inet('1.2.3.4', '5.6.7.8', 1, 2, tlv(0x04, Buffer.alloc(V2_MAX_BYTES))), 'too_long'],
  ])('refuses %s', (_, bytes, fault) => {
    const read = () => readAll(Buffer.concat([bytes, RTMP_C0C1]));
    expect(read).toThrow(ProxyHeaderError);
    expect(() => read()).toThrow(expect.objectContaining({ fault }));
  });

  it('refuses a wrong signature at its first wrong byte, without waiting for more', () => {
    expect(() => new ProxyHeaderReader().push(Buffer.from('PROXZ'))).toThrow(expect.objectContaining({ fault: 'bad_signature' }));
    expect(() => new ProxyHeaderReader().push(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b]))).toThrow(
      expect.objectContaining({ fault: 'bad_signature' }),
    );
    // A prefix of either signature is not refused yet: the rest may come.
    expect(new ProxyHeaderReader().push(Buffer.from('PROX'))).toBeUndefined();
    expect(new ProxyHeaderReader().push(SIGNATURE.subarray(0, 5))).toBeUndefined();
  });

  it('refuses a v1 line with no CRLF in its first 107 bytes (the most a v1 line may take) once it has them', () => {
    const line = Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`);
    expect(new ProxyHeaderReader().push(line.subarray(0, 106))).toBeUndefined();
    expect(() => new ProxyHeaderReader().push(line.subarray(0, 107))).toThrow(expect.objectContaining({ fault: 'too_long' }));
  });

  it('formats v2 IPv6 addresses the way Node writes a peer address', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 65535 }), (bytes, p) => {
        const header = Buffer.concat([Buffer.from(bytes), Buffer.alloc(16), port(p), port(1935)]);
        const read = readAll(v2(0x21, 0x21, header));
        const address = read?.header.kind === 'proxied' ? read.header.address : '';
        const canonical = new SocketAddress({ address, family: 'ipv6' }).address;
        expect(address).toBe(address.startsWith('::ffff:') && address.includes('.') ? address : canonical);
        expect(expand(canonical)).toEqual([...bytes]);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads any v1 or v2 header of any client, however the reads split it, and loses no byte after it', () => {
    const ipv4Text = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
    const headerOf = fc.oneof(
      fc.record({ address: ipv4Text, port: fc.nat(65535) }).map(({ address, port: p }) => ({
        bytes: Buffer.from(`PROXY TCP4 ${address} 10.0.0.1 ${p} 1935\r\n`),
        expected: proxied(address, p, 'IPv4'),
      })),
      fc.record({ address: fc.ipV6(), port: fc.nat(65535) }).map(({ address, port: p }) => ({
        bytes: Buffer.from(`PROXY TCP6 ${address} ::1 ${p} 1935\r\n`),
        expected: proxied(address, p, 'IPv6'),
      })),
      fc
        .record({ address: ipv4Text, port: fc.nat(65535), tlvs: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }) })
        .map(({ address, port: p, tlvs }) => ({
          bytes: v2Inet(address, '10.0.0.1', p, 1935, Buffer.concat(tlvs.map((value) => tlv(0xe0, Buffer.from(value))))),
          expected: proxied(address, p, 'IPv4'),
        })),
    );
    fc.assert(
      fc.property(
        headerOf,
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1 }),
        (h, after, sizes) => {
          const read = readAll(Buffer.concat([h.bytes, after]), sizes);
          expect(read?.header).toEqual(h.expected);
          expect(read?.after.equals(Buffer.from(after))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('on any bytes, reads a header, waits, or refuses with a ProxyHeaderError, and holds no more than the bound', () => {
    const start = fc.oneof(fc.constant(SIGNATURE), fc.constant(Buffer.from('PROXY ')), fc.constant(Buffer.alloc(0)));
    fc.assert(
      fc.property(start, fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 8 }), (prefix, reads) => {
        const reader = new ProxyHeaderReader();
        try {
          for (const bytes of [prefix, ...reads.map((r) => Buffer.from(r))]) {
            if (reader.push(bytes)) return;
            expect((reader as unknown as { held: Buffer }).held.length).toBeLessThan(V2_MAX_BYTES);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(ProxyHeaderError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ProxyHeaderReader at its bounds', () => {
  it('refuses a v1 line whose destination port is over 65535', () => {
    expect(() => readAll(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n'))).toThrow(expect.objectContaining({ fault: 'bad_v1_line' }));
  });

  it('reads a v2 header of exactly V2_MAX_BYTES', () => {
    const header = v2Inet('192.0.2.7', '10.0.0.1', 1, 2, tlv(0x04, Buffer.alloc(V2_MAX_BYTES - 16 - 12 - 3)));
    expect(header.length).toBe(V2_MAX_BYTES);
    expect(readAll(Buffer.concat([header, RTMP_C0C1]))).toEqual({ header: proxied('192.0.2.7', 1, 'IPv4'), after: RTMP_C0C1 });
  });
});
