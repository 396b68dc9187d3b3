// Splits one RTMP message into its chunks without copying the body: the
// chunk headers share one small buffer and the body goes out as views of
// itself. The first chunk carries a full (fmt 0) header with the absolute
// timestamp, so the parts depend only on the message, the chunk size and the
// stream id, and one list serves every player of a stream.
export const ChunkStreamId = {
  protocol: 2,
  command: 3,
  /** Commands and status sent on a media stream (onStatus, play/publish). */
  streamCommand: 5,
  data: 5,
  video: 6,
  audio: 7,
} as const;

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

/** Writes the fmt 0 header of a message's first chunk; returns the position after it. */
export function writeMessageHeader(out: Buffer, pos: number, csid: number, typeId: number, streamId: number, timestamp: number, bodyLength: number): number {
  const ts = timestamp >>> 0;
  const extended = ts >= 0xffffff;
  pos = writeBasicHeader(out, pos, 0, csid);
  out.writeUIntBE(extended ? 0xffffff : ts, pos, 3);
  out.writeUIntBE(bodyLength, pos + 3, 3);
  out[pos + 6] = typeId;
  out.writeUInt32LE(streamId, pos + 7);
  pos += 11;
  if (extended) pos = out.writeUInt32BE(ts, pos);
  return pos;
}

/** The message as socket-ready parts: header bytes and views of `body`, in order. */
export function chunkMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer, chunkSize: number): Buffer[] {
  const ts = timestamp >>> 0;
  const extended = ts >= 0xffffff;
  const continuation = basicHeaderSize(csid) + (extended ? 4 : 0);
  const chunks = Math.max(1, Math.ceil(body.length / chunkSize));
  const headers = Buffer.allocUnsafe(basicHeaderSize(csid) + 11 + (extended ? 4 : 0) + (chunks - 1) * continuation);
  let pos = writeMessageHeader(headers, 0, csid, typeId, streamId, ts, body.length);
  // Most media messages fit one chunk: two parts, no views to allocate.
  if (chunks === 1) return body.length > 0 ? [headers, body] : [headers];
  const parts: Buffer[] = [headers.subarray(0, pos)];
  for (let offset = 0; ; ) {
    const n = Math.min(chunkSize, body.length - offset);
    parts.push(body.subarray(offset, offset + n));
    offset += n;
    if (offset >= body.length) return parts;
    const start = pos;
    pos = writeBasicHeader(headers, pos, 3, csid);
    // Continuation chunks repeat the extended timestamp, as FFmpeg and librtmp expect.
    if (extended) pos = headers.writeUInt32BE(ts, pos);
    parts.push(headers.subarray(start, pos));
  }
}

/** The message as one contiguous buffer, for the few small control and command messages. */
export function serializeMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer, chunkSize: number): Buffer {
  return Buffer.concat(chunkMessage(csid, typeId, streamId, timestamp, body, chunkSize));
}
