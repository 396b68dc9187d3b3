import { FLV_TAG_TYPE, type MediaKind } from './media-kind.ts';

/** Largest body a tag's 24-bit DataSize can describe. */
const FLV_MAX_TAG_BODY = 0xffffff;

/** The 9-byte FLV file header followed by PreviousTagSize0 (13 bytes). */
export function FLV_FILE_HEADER(hasAudio: boolean, hasVideo: boolean): Buffer {
  const b = Buffer.alloc(13);
  b.write('FLV', 0, 'latin1');
  b[3] = 1;
  b[4] = (hasAudio ? 4 : 0) | (hasVideo ? 1 : 0);
  b.writeUInt32BE(9, 5);
  // PreviousTagSize0 = 0 (bytes 9..12 already zero).
  return b;
}

/** The bytes an FLV tag adds to its body: the 11-byte tag header and the 4-byte PreviousTagSize. */
export const FLV_TAG_OVERHEAD = 15;

/**
 * One complete FLV tag in a single contiguous buffer: 11-byte tag header
 * (timestamp split into 24 bits + TimestampExtended), the body (one copy),
 * then the 4-byte PreviousTagSize. Timestamps are milliseconds, taken modulo 2^32.
 */
export function flvTag(kind: MediaKind, timestamp: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FLV_TAG_OVERHEAD + body.length);
  writeFlvTag(out, 0, FLV_TAG_TYPE[kind], timestamp, body);
  return out;
}

/** Writes the FLV tag of `type` (an RTMP message type: the same numbers) at `pos` of `out`; returns where it ends. */
export function writeFlvTag(out: Buffer, pos: number, type: number, timestamp: number, body: Buffer): number {
  const size = body.length;
  if (size > FLV_MAX_TAG_BODY) throw new RangeError(`FLV tag body of ${size} bytes exceeds 16 MiB`);
  const ts = timestamp >>> 0;
  out[pos] = type;
  out[pos + 1] = size >>> 16;
  out[pos + 2] = (size >>> 8) & 0xff;
  out[pos + 3] = size & 0xff;
  out[pos + 4] = (ts >>> 16) & 0xff;
  out[pos + 5] = (ts >>> 8) & 0xff;
  out[pos + 6] = ts & 0xff;
  out[pos + 7] = ts >>> 24;
  out[pos + 8] = 0;
  out[pos + 9] = 0;
  out[pos + 10] = 0;
  body.copy(out, pos + 11);
  out.writeUInt32BE(11 + size, pos + 11 + size);
  return pos + FLV_TAG_OVERHEAD + size;
}
