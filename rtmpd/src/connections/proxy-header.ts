// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2)
// that a load balancer sends ahead of a connection's own bytes to name the
// client it carries. Protocol code without sockets, as rtmp/wire/ is: bytes
// go in as they are read, a header or an error comes out, with the bytes
// that followed it in the same read. What it holds is bounded: a v1 line is
// at most 107 bytes, a v2 header at most V2_MAX_BYTES.
import { isIPv4, isIPv6 } from 'node:net';

/** The client a header names, or `local`: keep the connection's own address (v2 LOCAL, a balancer's health check; v1 UNKNOWN; v2 UNSPEC or UNIX). */
export type ProxyHeader = { kind: 'proxied'; address: string; port: number; family: 'IPv4' | 'IPv6' } | { kind: 'local' };

/** Why a header was refused; a fixed token, no peer data in it. */
export type ProxyHeaderFault = 'bad_signature' | 'bad_v1_line' | 'bad_v2_header' | 'too_long';

export class ProxyHeaderError extends Error {
  override name = 'ProxyHeaderError';
  readonly fault: ProxyHeaderFault;
  constructor(fault: ProxyHeaderFault, message: string) {
    super(message);
    this.fault = fault;
  }
}

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** "PROXY TCP6 " + two full IPv6 addresses + two ports + spaces + CRLF, as the specification counts it. */
const V1_MAX_BYTES = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
/**
 * Addresses and TLVs of a v2 header we take (the format allows 64 KiB). The
 * balancers' TLVs (AWS's VPC endpoint id, GCP's and Azure's link ids, an
 * ALPN or SNI) take tens of bytes; 4 KiB leaves room for TLS client details.
 */
export const V2_MAX_BYTES = V2_FIXED_BYTES + 4096;

const V2_COMMAND_LOCAL = 0x20;
const V2_COMMAND_PROXY = 0x21;
const V2_FAMILY_INET = 0x1;
const V2_FAMILY_INET6 = 0x2;
const V2_TRANSPORT_STREAM = 0x1;

/**
 * Reads one header off the start of a connection. `push` each read until it
 * returns the header, with the bytes after it (a view of the last read);
 * it throws ProxyHeaderError as soon as the bytes cannot be a header.
 */
export class ProxyHeaderReader {
  /** Bytes of a header split across reads. */
  private held = Buffer.alloc(0);

  push(bytes: Buffer): { header: ProxyHeader; rest: Buffer } | undefined {
    const seen = this.held.length;
    const data = seen === 0 ? bytes : Buffer.concat([this.held, bytes.subarray(0, V2_MAX_BYTES - seen)]);
    const parsed = parseHeader(data);
    if (parsed === undefined) {
      this.held = Buffer.from(data.subarray(0, V2_MAX_BYTES));
      return undefined;
    }
    this.held = Buffer.alloc(0);
    return { header: parsed.header, rest: bytes.subarray(parsed.length - seen) };
  }
}

/** The header at the start of `data` and its length; undefined when more bytes are needed. */
function parseHeader(data: Buffer): { header: ProxyHeader; length: number } | undefined {
  if (startsWithPrefixOf(data, V2_SIGNATURE)) return data.length < V2_SIGNATURE.length ? undefined : parseV2(data);
  if (startsWithPrefixOf(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? undefined : parseV1(data);
  throw new ProxyHeaderError('bad_signature', 'the connection does not start with a PROXY protocol header');
}

/** Whether `data` and `prefix` agree on the bytes both have. */
function startsWithPrefixOf(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(data: Buffer): { header: ProxyHeader; length: number } | undefined {
  const end = data.subarray(0, V1_MAX_BYTES).indexOf('\r\n');
  if (end < 0) {
    if (data.length >= V1_MAX_BYTES) throw new ProxyHeaderError('too_long', `a PROXY v1 line longer than ${V1_MAX_BYTES} bytes`);
    return undefined;
  }
  const length = end + 2;
  const fields = data.toString('latin1', 0, end).split(' ');
  if (fields[1] === 'UNKNOWN') return { header: { kind: 'local' }, length };
  const [, protocol, source, , sourcePort, destinationPort] = fields;
  const family = protocol === 'TCP4' ? 'IPv4' : protocol === 'TCP6' ? 'IPv6' : undefined;
  const valid =
    fields.length === 6 &&
    family !== undefined &&
    (family === 'IPv4' ? isIPv4 : isIPv6)(source!) &&
    (family === 'IPv4' ? isIPv4 : isIPv6)(fields[3]!) &&
    isPort(sourcePort!) &&
    isPort(destinationPort!);
  if (!valid) throw new ProxyHeaderError('bad_v1_line', 'a malformed PROXY v1 line');
  return { header: { kind: 'proxied', address: source!, port: Number(sourcePort), family }, length };
}

/** A port as v1 writes it: decimal, no leading zero, at most 65535. */
const isPort = (text: string): boolean => /^(0|[1-9]\d{0,4})$/.test(text) && Number(text) <= 65535;

function parseV2(data: Buffer): { header: ProxyHeader; length: number } | undefined {
  if (data.length < V2_FIXED_BYTES) return undefined;
  const command = data[12]!;
  const family = data[13]! >> 4;
  const transport = data[13]! & 0xf;
  const length = V2_FIXED_BYTES + data.readUInt16BE(14);
  if (command !== V2_COMMAND_LOCAL && command !== V2_COMMAND_PROXY)
    throw new ProxyHeaderError('bad_v2_header', 'a PROXY v2 header of an unknown version or command');
  if (length > V2_MAX_BYTES) throw new ProxyHeaderError('too_long', `a PROXY v2 header longer than ${V2_MAX_BYTES} bytes`);
  if (data.length < length) return undefined;
  const body = data.subarray(V2_FIXED_BYTES, length);
  const addressBytes = family === V2_FAMILY_INET ? 12 : family === V2_FAMILY_INET6 ? 36 : 0;
  if (body.length < addressBytes) throw new ProxyHeaderError('bad_v2_header', 'a PROXY v2 header too short for its addresses');
  checkTlvs(body.subarray(addressBytes));
  // LOCAL: the balancer speaks for itself (a health check); UNSPEC and UNIX name no TCP client.
  if (command === V2_COMMAND_LOCAL || addressBytes === 0) return { header: { kind: 'local' }, length };
  if (transport !== V2_TRANSPORT_STREAM) throw new ProxyHeaderError('bad_v2_header', 'a PROXY v2 header for a transport other than TCP');
  const ipv4 = family === V2_FAMILY_INET;
  const address = ipv4 ? [...body.subarray(0, 4)].join('.') : formatIPv6(body.subarray(0, 16));
  const port = body.readUInt16BE(ipv4 ? 8 : 32);
  return { header: { kind: 'proxied', address, port, family: ipv4 ? 'IPv4' : 'IPv6' }, length };
}

/** TLVs (type, 16-bit length, value) must fill what follows the addresses exactly; their content is not used. */
function checkTlvs(tlvs: Buffer): void {
  let at = 0;
  while (at < tlvs.length) {
    if (at + 3 > tlvs.length) throw new ProxyHeaderError('bad_v2_header', 'a PROXY v2 TLV cut short');
    at += 3 + tlvs.readUInt16BE(at + 1);
  }
  if (at !== tlvs.length) throw new ProxyHeaderError('bad_v2_header', 'a PROXY v2 TLV longer than the header');
}

/** The text form Node gives a peer's IPv6 address: the longest run of zero groups as `::`, an IPv4-mapped address as ::ffff:a.b.c.d. */
function formatIPv6(bytes: Buffer): string {
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff)
    return `::ffff:${[...bytes.subarray(12)].join('.')}`;
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let bestAt = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestAt, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLength).join(':')}`;
}
