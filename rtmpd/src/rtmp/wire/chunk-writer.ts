// Writes one RTMP message as its chunks straight into an output buffer: the
// caller sizes the room with chunkedLength and writeChunks fills it, so the
// hot path builds no header buffers or part lists. The first chunk carries a
// full (fmt 0) header with the absolute timestamp, so the bytes depend only
// on the message, the chunk size and the stream id.

/** Timestamps from this value on go in the 4-byte extended field. */
const EXTENDED_TIMESTAMP = 0xffffff;

function basicHeaderSize(csid: number): number {
  return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

function writeBasicHeader(out: Buffer, pos: number, fmt: number, csid: number): number {
  if (csid < 64) {
    out[pos] = (fmt << 6) | csid;
    return pos + 1;
  }
  if (csid < 320) {
    out[pos] = fmt << 6;
    out[pos + 1] = csid - 64;
    return pos + 2;
  }
  out[pos] = (fmt << 6) | 1;
  out[pos + 1] = (csid - 64) & 0xff;
  out[pos + 2] = (csid - 64) >> 8;
  return pos + 3;
}

/** Stores a 3-byte big-endian field (timestamp, length) at `pos`. */
function putU24(out: Buffer, pos: number, value: number): void {
  out[pos] = value >>> 16;
  out[pos + 1] = value >>> 8;
  out[pos + 2] = value;
}

/** Bytes the message takes on the wire: its chunk headers and its body. */
export function chunkedLength(csid: number, timestamp: number, bodyLength: number, chunkSize: number): number {
  const extension = timestamp >>> 0 >= EXTENDED_TIMESTAMP ? 4 : 0;
  const chunks = Math.max(1, Math.ceil(bodyLength / chunkSize));
  // Continuation chunks repeat the extended timestamp, as FFmpeg and librtmp expect.
  return basicHeaderSize(csid) + 11 + chunks * extension + (chunks - 1) * basicHeaderSize(csid) + bodyLength;
}

/** Writes the message's chunks at `pos` (chunkedLength bytes of room); returns the position after them. */
export function writeChunks(
  out: Buffer,
  pos: number,
  csid: number,
  typeId: number,
  streamId: number,
  timestamp: number,
  body: Buffer,
  chunkSize: number,
): number {
  const ts = timestamp >>> 0;
  const extended = ts >= EXTENDED_TIMESTAMP;
  pos = writeBasicHeader(out, pos, 0, csid);
  // Byte stores: Buffer's checked writers cost more than the header they write, once per message and player.
  putU24(out, pos, extended ? EXTENDED_TIMESTAMP : ts);
  putU24(out, pos + 3, body.length);
  out[pos + 6] = typeId;
  out[pos + 7] = streamId;
  out[pos + 8] = streamId >>> 8;
  out[pos + 9] = streamId >>> 16;
  out[pos + 10] = streamId >>> 24; // little-endian, the one LE field of the protocol
  pos += 11;
  if (extended) pos = out.writeUInt32BE(ts, pos);
  // Most media messages fit one chunk (rtmpd sends 60000-byte chunks).
  if (body.length <= chunkSize) {
    out.set(body, pos);
    return pos + body.length;
  }
  for (let offset = 0; ;) {
    const end = Math.min(offset + chunkSize, body.length);
    pos += body.copy(out, pos, offset, end);
    offset = end;
    if (offset >= body.length) return pos;
    pos = writeBasicHeader(out, pos, 3, csid);
    if (extended) pos = out.writeUInt32BE(ts, pos);
  }
}

/** The message in a buffer of its own, for the few control and command messages built ahead of sending. */
export function serializeMessage(
  csid: number,
  typeId: number,
  streamId: number,
  timestamp: number,
  body: Buffer,
  chunkSize: number,
): Buffer {
  const out = Buffer.allocUnsafe(chunkedLength(csid, timestamp, body.length, chunkSize));
  writeChunks(out, 0, csid, typeId, streamId, timestamp, body, chunkSize);
  return out;
}
