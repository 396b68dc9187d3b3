import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RtmpProtocolError } from './errors.ts';
import {
  ClientHandshake,
  digestOffset,
  findDigest,
  handshakeKeys,
  HANDSHAKE_SIZE,
  ServerHandshake,
  type DigestSchema,
  type HandshakeKind,
} from './handshake.ts';
import { prng, randomPieces } from '../../../test/support/random.ts';

/** Feeds `data` in random pieces; returns what the handshake passed on after completing. */
function feed(target: { push(b: Buffer): Buffer | undefined }, data: Buffer, random: () => number): Buffer | undefined {
  const rest: Buffer[] = [];
  let done = false;
  for (const piece of randomPieces(data, random, 500)) {
    if (done) {
      rest.push(piece); // the session hands later bytes straight to the chunk reader
      continue;
    }
    const after = target.push(piece);
    if (after !== undefined) {
      done = true;
      rest.push(after);
    }
  }
  return done ? Buffer.concat(rest) : undefined;
}

/** Runs a client and a server handshake against each other in memory, bytes cut at random. */
function run(kind: HandshakeKind, seed: number) {
  const random = prng(seed);
  const toServer: Buffer[] = [];
  const toClient: Buffer[] = [];
  const server = new ServerHandshake((b) => toClient.push(b));
  const client = new ClientHandshake(kind, (b) => toServer.push(b));
  client.start();
  expect(feed(server, Buffer.concat(toServer.splice(0)), random)).toBeUndefined();
  const clientRest = feed(client, Buffer.concat(toClient.splice(0)), random);
  const serverRest = feed(server, Buffer.concat([...toServer.splice(0), Buffer.from([1, 2, 3])]), random);
  return { server, client, serverRest, clientRest };
}

describe('handshake', () => {
  it('completes a digest handshake and hands over the bytes after C2', () => {
    for (let seed = 1; seed < 6; seed++) {
      const { server, client, serverRest } = run('digest', seed);
      expect(server.kind).toBe('digest');
      expect(client.serverKind).toBe('digest');
      expect([...serverRest!]).toEqual([1, 2, 3]);
    }
  });

  it('completes a simple handshake', () => {
    const { server, client, serverRest } = run('simple', 9);
    expect(server.kind).toBe('simple');
    expect(client.serverKind).toBe('simple');
    expect([...serverRest!]).toEqual([1, 2, 3]);
  });

  it('places the digest at the sum of its 4 offset bytes modulo 728, past them, within its 764-byte block', () => {
    // Fixed offsets, as librtmp and FFmpeg compute them: 728 = 764 - 4 offset bytes - 32 digest bytes, so the
    // last place (727) still ends the digest inside its block. Sums of 728 and more wrap, which a random C1
    // rarely shows (FFmpeg's C1 always sums to 482).
    const at = (schema: DigestSchema, offsetBytes: number[]) => {
      const packet = Buffer.alloc(HANDSHAKE_SIZE);
      packet.set(offsetBytes, schema === 0 ? 772 : 8);
      return digestOffset(packet, schema);
    };
    expect(at(1, [0, 0, 0, 0])).toBe(12);
    expect(at(1, [181, 182, 182, 182])).toBe(12 + 727);
    expect(at(1, [182, 182, 182, 182])).toBe(12);
    expect(at(1, [255, 255, 255, 255])).toBe(12 + 292);
    expect(at(0, [0, 0, 0, 0])).toBe(776);
    expect(at(0, [181, 182, 182, 182])).toBe(776 + 727);
    expect(at(0, [255, 255, 255, 255])).toBe(776 + 292);
  });

  it('finds C1 digests in schema 0 and schema 1 and rejects a tampered one', () => {
    for (const schema of [0, 1] as const) {
      const c1 = Buffer.alloc(HANDSHAKE_SIZE, 0x5a);
      c1.writeUInt32BE(0x80000702, 4);
      const offset = digestOffset(c1, schema);
      const digest = createHmac('sha256', handshakeKeys.FP_KEY_PART)
        .update(c1.subarray(0, offset))
        .update(c1.subarray(offset + 32))
        .digest();
      digest.copy(c1, offset);
      expect(findDigest(c1, handshakeKeys.FP_KEY_PART)?.schema).toBe(schema);
      c1[offset] = c1[offset]! ^ 0xff;
      expect(findDigest(c1, handshakeKeys.FP_KEY_PART)).toBeUndefined();
    }
  });

  it('answers an unsigned C1 with a version with the simple handshake', () => {
    const sent: Buffer[] = [];
    const server = new ServerHandshake((b) => sent.push(b));
    const c0c1 = Buffer.alloc(1 + HANDSHAKE_SIZE, 7);
    c0c1[0] = 3;
    server.push(c0c1);
    expect(server.kind).toBe('simple');
    expect(sent[0]!.subarray(1 + HANDSHAKE_SIZE).equals(c0c1.subarray(1))).toBe(true);
  });

  it('refuses other versions', () => {
    for (const [version, reason] of [
      [6, 'handshake_rtmpe'],
      [0x47, 'handshake_bad_version'],
    ] as const) {
      const server = new ServerHandshake(() => {});
      let caught: unknown;
      try {
        server.push(Buffer.from([version, 0, 0]));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RtmpProtocolError);
      expect((caught as RtmpProtocolError).reason).toBe(reason);
    }
  });
});
