// What the network fuzzer sends: a captured session taken apart into its
// messages, changed where an RTMP parser makes decisions (chunk stream ids,
// message types, lengths that lie, timestamps, stream ids, chunk sizes, AMF
// markers and lengths, control messages out of place, messages dropped,
// repeated or spliced in from another session), written back as chunks and
// then, sometimes, changed byte by byte as the in-process fuzzer does, all
// behind a handshake that is itself sometimes broken.
import { randomEdits, mutate } from '../support/mutations.ts';
import { randomInt } from '../support/random.ts';
import { chunkedLength, writeChunks } from '../../src/rtmp/wire/chunk-writer.ts';
import { encodeAmf0 } from '../../src/rtmp/wire/amf0.ts';
import { ChunkReader } from '../../src/rtmp/wire/chunk-reader.ts';
import { HANDSHAKE_SIZE } from '../../src/rtmp/wire/handshake.ts';
import { ChunkStreamId, DEFAULT_CHUNK_SIZE, MessageType } from '../../src/rtmp/wire/message-types.ts';

export interface WireMessage {
  csid: number;
  typeId: number;
  streamId: number;
  timestamp: number;
  body: Buffer;
  /** The length its header claims, when that is a lie. */
  declaredLength?: number;
}

type Random = () => number;

const pick = <T>(random: Random, items: readonly T[]): T => items[randomInt(random, items.length)]!;

/** The chunk stream a client such as ffmpeg sends each kind of message on. */
function csidOf(typeId: number): number {
  if (typeId <= MessageType.setPeerBandwidth) return ChunkStreamId.protocol;
  if (typeId === MessageType.audio) return 4;
  if (typeId === MessageType.video) return ChunkStreamId.video;
  return ChunkStreamId.command;
}

/** A session's bytes after the handshake, as messages (what a well-formed capture holds). */
export function messagesOf(session: Buffer): WireMessage[] {
  const messages: WireMessage[] = [];
  const reader = new ChunkReader((typeId, streamId, timestamp, body) =>
    messages.push({ csid: csidOf(typeId), typeId, streamId, timestamp, body: Buffer.from(body) }),
  );
  reader.push(session);
  return messages;
}

const basicHeaderSize = (csid: number): number => (csid < 64 ? 1 : csid < 320 ? 2 : 3);

/**
 * The messages as chunks. A Set Chunk Size among them changes the size the
 * rest are cut at (when it is one a reader could honour), as it would for a
 * real client.
 */
function chunksOf(messages: readonly WireMessage[]): Buffer {
  const parts: Buffer[] = [];
  let chunkSize = DEFAULT_CHUNK_SIZE;
  for (const m of messages) {
    const out = Buffer.alloc(chunkedLength(m.csid, m.timestamp, m.body.length, chunkSize));
    writeChunks(out, 0, m.csid, m.typeId, m.streamId, m.timestamp, m.body, chunkSize);
    if (m.declaredLength !== undefined) out.writeUIntBE(m.declaredLength & 0xffffff, basicHeaderSize(m.csid) + 3, 3);
    parts.push(out);
    const size = m.typeId === MessageType.setChunkSize && m.body.length >= 4 ? m.body.readUInt32BE(0) : 0;
    if (size >= 1 && size <= 0x7fffffff) chunkSize = Math.min(size, 1 << 20);
  }
  return Buffer.concat(parts);
}

const u32 = (value: number): Buffer => {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(value >>> 0);
  return body;
};

const control = (typeId: number, body: Buffer): WireMessage => ({ csid: ChunkStreamId.protocol, typeId, streamId: 0, timestamp: 0, body });

const TYPES = Object.values(MessageType);
const CSIDS = [2, 3, 4, 63, 64, 65, 319, 320, 65599];
const TIMESTAMPS = [0, 1, 0xfffffe, 0xffffff, 0x1000000, 0x7fffffff, 0xffffffff];
const CHUNK_SIZES = [1, 2, 127, 128, 4096, 65536, 0x7fffffff, 0x80000000, 0];
/** AMF0 and AMF3 type markers, and one past each range. */
const AMF_MARKERS = [...Array(0x12).keys()];

/** Rewrites a few bytes of `body` as an AMF marker followed by a length a parser must not trust. */
function amfEdit(random: Random, body: Buffer): Buffer {
  if (body.length === 0) return body;
  const out = Buffer.from(body);
  const at = randomInt(random, out.length);
  out[at] = pick(random, AMF_MARKERS);
  const length = pick(random, [0, 1, 0xffff, 0x7fffffff, 0xffffffff, randomInt(random, 1 << 16)]);
  const room = out.length - at - 1;
  if (room >= 4 && random() < 0.5) out.writeUInt32BE(length >>> 0, at + 1);
  else if (room >= 2) out.writeUInt16BE(length & 0xffff, at + 1);
  return out;
}

/** One structural change to `messages` (in place); `other` is a session to splice from. */
function mutateMessages(random: Random, messages: WireMessage[], other: readonly WireMessage[]): void {
  const at = randomInt(random, messages.length + 1);
  const m = messages[Math.min(at, messages.length - 1)];
  switch (randomInt(random, 14)) {
    case 0:
      if (m) m.typeId = random() < 0.7 ? pick(random, TYPES) : randomInt(random, 256);
      return;
    case 1:
      if (m) m.timestamp = random() < 0.7 ? pick(random, TIMESTAMPS) : randomInt(random, 2 ** 32);
      return;
    case 2:
      if (m) m.streamId = pick(random, [0, 1, 2, 0xffffffff, randomInt(random, 2 ** 32)]);
      return;
    case 3:
      if (m) m.csid = pick(random, CSIDS);
      return;
    case 4:
      if (m) m.declaredLength = pick(random, [0, 1, m.body.length - 1, m.body.length + 1, 0xffffff, randomInt(random, 1 << 24)]);
      return;
    case 5:
      if (m) m.body = mutate(m.body, randomEdits(random, 1 + randomInt(random, 8)));
      return;
    case 6:
      if (m) m.body = amfEdit(random, m.body);
      return;
    case 7:
      messages.splice(at, 1);
      return;
    case 8:
      if (m) messages.splice(at, 0, { ...m }, ...(random() < 0.1 ? Array.from({ length: 64 }, () => ({ ...m })) : []));
      return;
    case 9:
      messages.splice(at, 0, control(MessageType.setChunkSize, u32(pick(random, CHUNK_SIZES))));
      return;
    case 10:
      messages.splice(at, 0, control(MessageType.abort, u32(pick(random, CSIDS))));
      return;
    case 11:
      messages.splice(at, 0, control(MessageType.windowAckSize, u32(pick(random, [0, 1, 4096, 0xffffffff]))));
      return;
    case 12: {
      const event = Buffer.alloc(2 + randomInt(random, 10));
      event.writeUInt16BE(randomInt(random, 8));
      messages.splice(at, 0, control(MessageType.userControl, event));
      return;
    }
    default: {
      // Splice: a run of the other session's messages.
      const from = randomInt(random, other.length);
      messages.splice(at, 0, ...other.slice(from, from + 1 + randomInt(random, 16)).map((o) => ({ ...o })));
    }
  }
}

/** C0, C1 (simple: version 0) and C2 at once, as an eager client sends them; rarely a wrong version byte. */
function handshake(random: Random): Buffer {
  const bytes = Buffer.alloc(1 + 2 * HANDSHAKE_SIZE);
  bytes[0] = random() < 0.02 ? randomInt(random, 256) : 3;
  for (let i = 9; i < bytes.length; i += 97) bytes[i] = randomInt(random, 256);
  return bytes;
}

/** The stream keys of the captures (ffmpeg publishes `capture`, rtmpdump plays `cap2`), and the few keys fuzz clients use. */
const CAPTURED_KEYS = ['capture', 'cap2'].map((key) => encodeAmf0(key));
const KEYS = ['capture', 'cap2', 'k1', 'k2'];

/** `body` with the captured stream keys (AMF0 strings) replaced by `key`. */
function withKey(body: Buffer, key: Buffer): Buffer {
  for (const captured of CAPTURED_KEYS) {
    const at = body.indexOf(captured);
    if (at >= 0) return Buffer.concat([body.subarray(0, at), key, body.subarray(at + captured.length)]);
  }
  return body;
}

/**
 * A session to send: the handshake, then one of `sessions` (message lists)
 * publishing or playing one of a few stream keys, so that fuzzed players
 * meet fuzzed publishers, with 1-6 structural changes, and sometimes byte
 * edits of the chunks.
 */
export function mutatedSession(random: Random, sessions: readonly (readonly WireMessage[])[]): Buffer {
  const key = encodeAmf0(pick(random, KEYS));
  const messages = pick(random, sessions).map((m) => ({
    ...m,
    body: m.typeId === MessageType.commandAmf0 ? withKey(m.body, key) : m.body,
  }));
  const other = pick(random, sessions);
  for (let n = 1 + randomInt(random, 6); n > 0; n--) mutateMessages(random, messages, other);
  let chunks = chunksOf(messages);
  if (random() < 0.3) chunks = mutate(chunks, randomEdits(random, 1 + randomInt(random, 4)));
  return Buffer.concat([handshake(random), chunks]);
}
