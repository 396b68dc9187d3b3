// Serializes one RTMP message into its chunks as ONE contiguous buffer, so a
// message is one socket write. The first chunk carries a full (fmt 0) header
// with the absolute timestamp: the bytes depend only on the message, the
// chunk size and the stream id, so one buffer serves every player of a stream.
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

/** Size of the serialized message, for callers that preallocate. */
export function serializedSize(csid: number, timestamp: number, bodyLength: number, chunkSize: number): number {
  const basic = basicHeaderSize(csid);
  const ext = timestamp >>> 0 >= 0xffffff ? 4 : 0;
  const chunks = Math.max(1, Math.ceil(bodyLength / chunkSize));
  return basic + 11 + ext + (chunks - 1) * (basic + ext) + bodyLength;
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

export function serializeMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer, chunkSize: number): Buffer {
  const ts = timestamp >>> 0;
  const extended = ts >= 0xffffff;
  const out = Buffer.allocUnsafe(serializedSize(csid, ts, body.length, chunkSize));
  let pos = writeMessageHeader(out, 0, csid, typeId, streamId, ts, body.length);
  let offset = Math.min(chunkSize, body.length);
  body.copy(out, pos, 0, offset);
  pos += offset;
  while (offset < body.length) {
    pos = writeBasicHeader(out, pos, 3, csid);
    // Continuation chunks repeat the extended timestamp, as FFmpeg and librtmp expect.
    if (extended) pos = out.writeUInt32BE(ts, pos);
    const n = Math.min(chunkSize, body.length - offset);
    body.copy(out, pos, offset, offset + n);
    pos += n;
    offset += n;
  }
  return out;
}
