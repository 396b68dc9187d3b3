// The RTMP handshake: C0/C1/C2 and S0/S1/S2. Flash Player 9+ and most
// encoders (librtmp/OBS, FFmpeg) send the "digest" form, where C1 hides an
// HMAC-SHA256 at a position derived from its own bytes (schema 0: key block
// first; schema 1: digest block first) and expect S1/S2 signed with the FMS
// key in return; older clients send plain random bytes and want an echo.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { RtmpProtocolError } from './errors.ts';

const RTMP_VERSION = 3;
export const HANDSHAKE_SIZE = 1536;
const DIGEST_LENGTH = 32;

const KEY_TAIL = Buffer.from('F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE', 'hex');
/** The Flash Player key: its first 30 bytes sign C1, all of it keys C2. */
const FP_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Player 001'), KEY_TAIL]);
/** The server key: its first 36 bytes sign S1, all of it keys S2. */
const FMS_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Media Server 001'), KEY_TAIL]);
const FP_KEY_PART = FP_KEY.subarray(0, 30);
const FMS_KEY_PART = FMS_KEY.subarray(0, 36);
/** Version we claim in S1, as FMS 3.5 does; non-zero marks a digest S1. */
const SERVER_VERSION = Buffer.from([0x0d, 0x0e, 0x0a, 0x0d]);
/** Version we claim in C1, as Flash Player 9 did. */
const CLIENT_VERSION = Buffer.from([0x80, 0x00, 0x07, 0x02]);

export type DigestSchema = 0 | 1;

function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const part of parts) h.update(part);
  return h.digest();
}

/** Where the 32-byte digest sits in a 1536-byte C1/S1 for a schema. */
export function digestOffset(packet: Buffer, schema: DigestSchema): number {
  const base = schema === 0 ? 772 : 8;
  const sum = packet[base]! + packet[base + 1]! + packet[base + 2]! + packet[base + 3]!;
  return (sum % 728) + base + 4;
}

function computeDigest(packet: Buffer, offset: number, key: Buffer): Buffer {
  return hmac(key, packet.subarray(0, offset), packet.subarray(offset + DIGEST_LENGTH));
}

/** Returns the digest and its schema when the packet is validly signed with `key`. */
export function findDigest(packet: Buffer, key: Buffer): { digest: Buffer; schema: DigestSchema } | undefined {
  for (const schema of [1, 0] as const) {
    const offset = digestOffset(packet, schema);
    const digest = packet.subarray(offset, offset + DIGEST_LENGTH);
    if (timingSafeEqual(computeDigest(packet, offset, key), digest)) return { digest: Buffer.from(digest), schema };
  }
  return undefined;
}

/** Builds a C1 or S1 (1536 bytes) signed with a digest in `schema`'s place. */
function signedPacket(version: Buffer, key: Buffer, schema: DigestSchema): { packet: Buffer; digest: Buffer } {
  const packet = randomBytes(HANDSHAKE_SIZE);
  packet.writeUInt32BE(0, 0); // time
  version.copy(packet, 4);
  const offset = digestOffset(packet, schema);
  const digest = computeDigest(packet, offset, key);
  digest.copy(packet, offset);
  return { packet, digest };
}

/** Builds a C2/S2 answering the peer's digest: random bytes with a trailing HMAC. */
function signedResponse(peerDigest: Buffer, fullKey: Buffer): Buffer {
  const packet = randomBytes(HANDSHAKE_SIZE);
  const key = hmac(fullKey, peerDigest);
  hmac(key, packet.subarray(0, HANDSHAKE_SIZE - DIGEST_LENGTH)).copy(packet, HANDSHAKE_SIZE - DIGEST_LENGTH);
  return packet;
}

/** Checks a C2/S2 against the digest we sent in C1/S1. */
function validResponse(response: Buffer, ourDigest: Buffer, fullKey: Buffer): boolean {
  const key = hmac(fullKey, ourDigest);
  const expected = hmac(key, response.subarray(0, HANDSHAKE_SIZE - DIGEST_LENGTH));
  return timingSafeEqual(expected, response.subarray(HANDSHAKE_SIZE - DIGEST_LENGTH, HANDSHAKE_SIZE));
}

export type HandshakeKind = 'simple' | 'digest';

/**
 * Server side: answers C0+C1 with S0+S1+S2 in one write, then waits for C2.
 * Fed socket bytes; `push` returns the bytes left after C2 (the first chunks,
 * which eager clients send before reading S2), or undefined while incomplete.
 */
export class ServerHandshake {
  kind: HandshakeKind | undefined;
  private readonly buf = Buffer.allocUnsafe(1 + HANDSHAKE_SIZE * 2);
  private filled = 0;
  private readonly send: (bytes: Buffer) => void;

  constructor(send: (bytes: Buffer) => void) {
    this.send = send;
  }

  push(data: Buffer): Buffer | undefined {
    const wanted = this.buf.length - this.filled;
    const take = Math.min(wanted, data.length);
    const before = this.filled;
    data.copy(this.buf, this.filled, 0, take);
    this.filled += take;
    if (before < 1 && this.filled >= 1 && this.buf[0] !== RTMP_VERSION) {
      // 0x06 is RTMPE (encrypted), which we do not speak; anything else is not RTMP at all.
      throw new RtmpProtocolError(this.buf[0] === 6 ? 'handshake_rtmpe' : 'handshake_bad_version', `C0 version ${this.buf[0]}`);
    }
    if (before < 1 + HANDSHAKE_SIZE && this.filled >= 1 + HANDSHAKE_SIZE) this.answer(this.buf.subarray(1, 1 + HANDSHAKE_SIZE));
    if (this.filled < this.buf.length) return undefined;
    return data.subarray(take);
  }

  private answer(c1: Buffer): void {
    const clientVersion = c1.readUInt32BE(4);
    const found = clientVersion === 0 ? undefined : findDigest(c1, FP_KEY_PART);
    const reply = Buffer.allocUnsafe(1 + HANDSHAKE_SIZE * 2);
    reply[0] = RTMP_VERSION;
    if (found) {
      this.kind = 'digest';
      signedPacket(SERVER_VERSION, FMS_KEY_PART, found.schema).packet.copy(reply, 1);
      signedResponse(found.digest, FMS_KEY).copy(reply, 1 + HANDSHAKE_SIZE);
    } else {
      // Simple handshake: S1 is random with zero version, S2 echoes C1.
      this.kind = 'simple';
      randomBytes(HANDSHAKE_SIZE).copy(reply, 1);
      reply.writeUInt32BE(0, 1);
      reply.writeUInt32BE(0, 5);
      c1.copy(reply, 1 + HANDSHAKE_SIZE);
    }
    this.send(reply);
  }
}

/**
 * Client side: `start()` gives C0+C1; `push` takes S0+S1+S2, sends C2 and
 * returns the bytes after S2 once complete. In digest mode S2 is checked
 * against our C1 digest; a simple server's echo is accepted as well.
 */
export class ClientHandshake {
  readonly kind: HandshakeKind;
  serverKind: HandshakeKind | undefined;
  private readonly buf = Buffer.allocUnsafe(1 + HANDSHAKE_SIZE * 2);
  private filled = 0;
  private c1: Buffer | undefined;
  private c1Digest: Buffer | undefined;
  private readonly send: (bytes: Buffer) => void;

  constructor(kind: HandshakeKind, send: (bytes: Buffer) => void) {
    this.kind = kind;
    this.send = send;
  }

  start(): void {
    let c1: Buffer;
    if (this.kind === 'digest') {
      const signed = signedPacket(CLIENT_VERSION, FP_KEY_PART, 1);
      c1 = signed.packet;
      this.c1Digest = signed.digest;
    } else {
      c1 = randomBytes(HANDSHAKE_SIZE);
      c1.writeUInt32BE(0, 0);
      c1.writeUInt32BE(0, 4);
    }
    this.c1 = c1;
    const c0c1 = Buffer.allocUnsafe(1 + HANDSHAKE_SIZE);
    c0c1[0] = RTMP_VERSION;
    c1.copy(c0c1, 1);
    this.send(c0c1);
  }

  push(data: Buffer): Buffer | undefined {
    const take = Math.min(this.buf.length - this.filled, data.length);
    const before = this.filled;
    data.copy(this.buf, this.filled, 0, take);
    this.filled += take;
    if (before < 1 && this.filled >= 1 && this.buf[0] !== RTMP_VERSION)
      throw new RtmpProtocolError('handshake_bad_version', `S0 version ${this.buf[0]}`);
    if (this.filled < this.buf.length) return undefined;
    const s1 = this.buf.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = this.buf.subarray(1 + HANDSHAKE_SIZE);
    const serverDigest = this.kind === 'digest' && s1.readUInt32BE(4) !== 0 ? findDigest(s1, FMS_KEY_PART) : undefined;
    if (serverDigest && this.c1Digest) {
      this.serverKind = 'digest';
      if (!validResponse(s2, this.c1Digest, FMS_KEY) && !s2.equals(this.c1!))
        throw new RtmpProtocolError('handshake_bad_digest', 'S2 does not answer our C1');
      this.send(signedResponse(serverDigest.digest, FP_KEY));
    } else {
      this.serverKind = 'simple';
      this.send(Buffer.from(s1)); // C2 echoes S1
    }
    return data.subarray(take);
  }
}

export const handshakeKeys = { FP_KEY, FMS_KEY, FP_KEY_PART, FMS_KEY_PART } as const;
