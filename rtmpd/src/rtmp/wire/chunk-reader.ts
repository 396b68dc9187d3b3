// Incremental RTMP chunk stream parser. Socket reads arrive cut anywhere, so
// a chunk header is collected into a small fixed buffer, and payload bytes go
// straight from the socket's buffer into one buffer sized from the message
// header: no concatenation, one copy. Each finished body is handed over and
// never touched again. With borrowBodies, bodies are lent instead: a message
// that arrived whole is not copied at all (the handler gets a view of the
// pushed bytes), and one put together from several chunks or reads is
// assembled in a pooled buffer that goes back to the pool after the handler.
import type { BufferPool } from '../../memory/buffer-pool.ts';
import type { Budget } from '../../memory/byte-budget.ts';
import { RtmpProtocolError } from './errors.ts';
import { DEFAULT_CHUNK_SIZE, MessageType } from './message-types.ts';

/**
 * No encoder sends a message this large (the 3-byte length field tops out
 * just below it, so the default only matters when configured lower).
 */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Chunks larger than a whole message cannot matter, so larger declared sizes are clamped. */
const MAX_EFFECTIVE_CHUNK_SIZE = MAX_MESSAGE_BYTES;

/** What one reader may hold; the owner changes them as the peer earns trust (rtmp/server/session.ts). */
export interface InboundLimits {
  /** Largest message accepted. */
  maxMessageBytes: number;
  /** Bytes allocated for unfinished messages across all chunk streams of the connection. */
  maxPartialBytes: number;
  /** Bytes of unfinished messages across many readers (the server's, for one kind of connection); a reader that would pass it fails. */
  budget?: Budget;
  /** Distinct chunk stream ids the connection may use; 64 when absent. */
  maxChunkStreams?: number;
}

export interface ChunkReaderOptions extends Partial<InboundLimits> {
  /**
   * A message that arrives whole in one chunk of the pushed bytes is handed
   * over as a view of them instead of a copy. For a caller that reuses its
   * read buffer: such a body is valid only during the handler call, and
   * whoever keeps it longer copies it.
   */
  borrowBodies?: boolean;
  /**
   * With borrowBodies, where messages that span chunks or reads are
   * assembled (in buffers of power-of-two sizes) and returned once handled.
   */
  bodyPool?: BufferPool;
}

/** Called once per complete message; `body` now belongs to the callee (unless borrowed: see borrowBodies). */
export type MessageHandler = (typeId: number, streamId: number, timestamp: number, body: Buffer) => void;

class ChunkStream {
  typeId = 0;
  streamId = 0;
  length = 0;
  /** Absolute timestamp of the current message, in ms modulo 2^32. */
  timestamp = 0;
  delta = 0;
  /** The last header carried an extended timestamp, so continuation chunks do too. */
  extended = false;
  /** The extended timestamp field of the message's first chunk, which continuations repeat. */
  extendedField = 0;
  hasHeader = false;
  body: Buffer | undefined = undefined;
  /** The pooled buffer `body` is a view of, returned once the message is handled. */
  pooled: Buffer | undefined = undefined;
  /** What `body` was taken from: the budget when it was allocated, which a later change of limits does not move. */
  budget: Budget | undefined = undefined;
  filled = 0;
  /** When unfinishedSince first found the message unfinished; -1 until it has. */
  seenAt = -1;
}

const EMPTY = Buffer.alloc(0);
/** The smallest pooled body buffer: an audio frame cut by a read. */
const MIN_POOLED_BYTES = 1024;
/** Larger bodies (a big keyframe) are allocated and left to the GC. */
const MAX_POOLED_BYTES = 1024 * 1024;

/** The 3-byte big-endian field at `pos` (timestamp, length). */
function u24(bytes: Buffer, pos: number): number {
  return (bytes[pos]! << 16) | (bytes[pos + 1]! << 8) | bytes[pos + 2]!;
}
/** Message header sizes by fmt. */
const MESSAGE_HEADER_SIZE = [11, 7, 3, 0] as const;
/** The largest chunk header: 3 (basic) + 11 (message) + 4 (extended timestamp) bytes. */
const MAX_HEADER_BYTES = 18;

export class ChunkReader {
  /** Inbound chunk size, changed by the peer's Set Chunk Size. */
  chunkSize = DEFAULT_CHUNK_SIZE;
  private maxMessageBytes: number;
  private maxPartialBytes: number;
  private budget: Budget | undefined;
  private maxChunkStreams: number;
  private readonly streams = new Map<number, ChunkStream>();
  private readonly onMessage: MessageHandler;
  /** A header cut by the end of a read, collected until whole. */
  private readonly header = Buffer.allocUnsafeSlow(MAX_HEADER_BYTES); // not from the shared pool: it lives as long as the connection
  private headerLength = 0;
  private inPayload = false;
  private current: ChunkStream | undefined;
  private chunkRemaining = 0;
  private partialBytes = 0;
  private stopped = false;
  private readonly borrowBodies: boolean;
  private readonly bodyPool: BufferPool | undefined;

  constructor(onMessage: MessageHandler, options: ChunkReaderOptions = {}) {
    this.onMessage = onMessage;
    this.borrowBodies = options.borrowBodies ?? false;
    this.bodyPool = this.borrowBodies ? options.bodyPool : undefined;
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    // One maximal message in flight: an honest encoder interleaves one video frame with small audio.
    this.maxPartialBytes = options.maxPartialBytes ?? MAX_MESSAGE_BYTES + 1024 * 1024;
    this.budget = options.budget;
    this.maxChunkStreams = options.maxChunkStreams ?? 64;
  }

  /** Applies from the next message on; a message already arriving keeps the room it was given. */
  setLimits(limits: InboundLimits): void {
    this.maxMessageBytes = limits.maxMessageBytes;
    this.maxPartialBytes = limits.maxPartialBytes;
    this.budget = limits.budget;
    this.maxChunkStreams = limits.maxChunkStreams ?? this.maxChunkStreams;
  }

  /** Bytes held for messages not yet complete. */
  get bufferedBytes(): number {
    return this.partialBytes;
  }

  /**
   * When the oldest message still arriving was first found unfinished by
   * this call, or undefined when none is. Called once per sweep of the
   * owner, it times every message to within that sweep, with no clock read
   * or timer per message.
   */
  unfinishedSince(now: number): number | undefined {
    if (this.partialBytes === 0) return undefined;
    let oldest = now;
    for (const cs of this.streams.values()) {
      if (cs.body === undefined) continue;
      if (cs.seenAt < 0) cs.seenAt = now;
      oldest = Math.min(oldest, cs.seenAt);
    }
    return oldest;
  }

  /** Stops parsing, e.g. when a handler closed the connection mid-buffer. */
  stop(): void {
    this.stopped = true;
    for (const cs of this.streams.values()) this.dropPartial(cs);
  }

  /** Parses as much of `data` as forms chunks; keeps the rest for the next call. Throws RtmpProtocolError. */
  push(data: Buffer): void {
    let pos = 0;
    const end = data.length;
    while (pos < end && !this.stopped) {
      if (!this.inPayload) {
        let header = data;
        let at = pos;
        if (this.headerLength === 0 && end - pos >= MAX_HEADER_BYTES) {
          // The whole header is in this read (nearly always): parsed where it lies.
          pos += this.headerSize(data, pos, MAX_HEADER_BYTES);
        } else {
          // Collect the header; its size is known only as its bytes arrive.
          while (true) {
            const need = this.headerSize(this.header, 0, this.headerLength);
            if (this.headerLength >= need) break;
            const n = Math.min(need - this.headerLength, end - pos);
            if (n === 0) return;
            // A byte loop: a dozen bytes do not pay for Buffer.copy's call into C++.
            for (let i = 0; i < n; i++) this.header[this.headerLength + i] = data[pos + i]!;
            this.headerLength += n;
            pos += n;
          }
          header = this.header;
          at = 0;
        }
        const whole = this.startChunk(header, at, end - pos);
        if (this.stopped) return;
        if (whole) {
          pos += whole.length;
          this.deliver(whole, data.subarray(pos - whole.length, pos));
        }
        continue;
      }
      const cs = this.current!;
      const n = Math.min(this.chunkRemaining, end - pos);
      data.copy(cs.body!, cs.filled, pos, pos + n);
      cs.filled += n;
      pos += n;
      this.chunkRemaining -= n;
      if (this.chunkRemaining === 0) this.endChunk(cs);
    }
  }

  /** Bytes of the header at `h[at]` given the `have` bytes of it there: all of it, once enough are there to tell. */
  private headerSize(h: Buffer, at: number, have: number): number {
    if (have < 1) return 1;
    const first = h[at]!;
    const fmt = first >> 6;
    const low = first & 0x3f;
    const basic = low === 0 ? 2 : low === 1 ? 3 : 1;
    if (have < basic) return basic;
    const base = basic + MESSAGE_HEADER_SIZE[fmt as 0 | 1 | 2 | 3];
    if (have < base) return base;
    if (fmt < 3) return u24(h, at + basic) === 0xffffff ? base + 4 : base;
    const cs = this.streams.get(this.csid(h, at, basic));
    return cs?.extended ? base + 4 : base;
  }

  private csid(h: Buffer, at: number, basic: number): number {
    if (basic === 1) return h[at]! & 0x3f;
    if (basic === 2) return h[at + 1]! + 64;
    return h[at + 1]! + h[at + 2]! * 256 + 64;
  }

  /**
   * Takes the header at `h[at]`. `available`: payload bytes already pushed
   * after it. Returns the chunk stream when, with borrowBodies, its message
   * lies whole in them: the caller delivers it as a view.
   */
  private startChunk(h: Buffer, at: number, available: number): ChunkStream | undefined {
    const fmt = h[at]! >> 6;
    const low = h[at]! & 0x3f;
    const basic = low === 0 ? 2 : low === 1 ? 3 : 1;
    const csid = this.csid(h, at, basic);
    let cs = this.streams.get(csid);
    if (!cs) {
      if (this.streams.size >= this.maxChunkStreams) throw new RtmpProtocolError('too_many_chunk_streams');
      cs = new ChunkStream();
      this.streams.set(csid, cs);
    }
    const fields = at + basic;
    const extendedAt = fields + MESSAGE_HEADER_SIZE[fmt as 0 | 1 | 2 | 3];
    const continuation = cs.body !== undefined;
    if (continuation && fmt !== 3) {
      // A new header where a message was unfinished: the peer gave up on it
      // without an Abort. Drop the partial message and take the new one.
      this.dropPartial(cs);
    }
    if (fmt === 3) {
      if (!cs.hasHeader) throw new RtmpProtocolError('chunk_no_previous_header', `fmt 3 on fresh chunk stream ${csid}`);
      if (!continuation) {
        // A new message with every field repeated, timestamp advanced by the last delta.
        if (cs.extended) cs.delta = cs.extendedField = h.readUInt32BE(extendedAt);
        cs.timestamp = (cs.timestamp + cs.delta) >>> 0;
      }
    } else {
      let field = u24(h, fields);
      cs.extended = field === 0xffffff;
      if (cs.extended) field = cs.extendedField = h.readUInt32BE(extendedAt);
      if (fmt === 0) {
        cs.timestamp = field;
        // FFmpeg and SRS treat a later fmt 3 new message as advancing by this value.
        cs.delta = field;
        cs.length = u24(h, fields + 3);
        cs.typeId = h[fields + 6]!;
        cs.streamId = h.readUInt32LE(fields + 7);
      } else {
        if (!cs.hasHeader && fmt === 2) throw new RtmpProtocolError('chunk_no_previous_header', `fmt 2 on fresh chunk stream ${csid}`);
        cs.delta = field;
        cs.timestamp = (cs.timestamp + field) >>> 0;
        if (fmt === 1) {
          cs.length = u24(h, fields + 3);
          cs.typeId = h[fields + 6]!;
        }
      }
      cs.hasHeader = true;
    }
    this.headerLength = 0;
    if (cs.body === undefined) {
      if (cs.length > this.maxMessageBytes) throw new RtmpProtocolError('message_too_large', `message of ${cs.length} bytes`);
      if (cs.length === 0) {
        this.deliver(cs, EMPTY);
        return;
      }
      if (this.borrowBodies && cs.length <= this.chunkSize && cs.length <= available) return cs;
      if (this.partialBytes + cs.length > this.maxPartialBytes) throw new RtmpProtocolError('partial_bytes_exceeded');
      if (this.budget && !this.budget.take(cs.length)) throw new RtmpProtocolError('partial_budget_exceeded');
      cs.budget = this.budget;
      this.allocateBody(cs);
    }
    this.current = cs;
    this.chunkRemaining = Math.min(this.chunkSize, cs.length - cs.filled);
    this.inPayload = true;
    if (continuation && fmt === 3 && cs.extended && this.chunkRemaining >= 4 && h.readUInt32BE(extendedAt) !== cs.extendedField) {
      // Some encoders leave the extended timestamp off continuation chunks
      // (the spec was ambiguous); as SRS does, bytes that do not repeat the
      // header's value are taken as payload.
      h.copy(cs.body!, cs.filled, extendedAt, extendedAt + 4);
      cs.filled += 4;
      this.chunkRemaining -= 4;
      if (this.chunkRemaining === 0) this.endChunk(cs);
    }
  }

  /** The buffer the message's chunks are copied into, sized from its header. */
  private allocateBody(cs: ChunkStream): void {
    const length = cs.length;
    const pool = this.bodyPool;
    if (pool !== undefined && length <= MAX_POOLED_BYTES) {
      let size = MIN_POOLED_BYTES;
      while (size < length) size *= 2;
      cs.pooled = pool.take(size);
      cs.body = cs.pooled.subarray(0, length);
    } else {
      // Small bodies come from Node's shared pool; big ones get their own memory.
      cs.body = length < 4096 ? Buffer.allocUnsafe(length) : Buffer.allocUnsafeSlow(length);
    }
    cs.filled = 0;
    cs.seenAt = -1;
    this.partialBytes += length;
  }

  private endChunk(cs: ChunkStream): void {
    this.inPayload = false;
    this.current = undefined;
    if (cs.filled < cs.length) return;
    const body = cs.body!;
    const pooled = cs.pooled;
    cs.body = undefined;
    cs.pooled = undefined;
    this.releaseBudget(cs);
    this.deliver(cs, body);
    // Lent: the handler copied whatever it keeps.
    if (pooled !== undefined) this.bodyPool!.give(pooled);
  }

  private deliver(cs: ChunkStream, body: Buffer): void {
    // These two change how the following bytes parse, so the reader acts on them itself.
    if (cs.typeId === MessageType.setChunkSize) this.setChunkSize(body);
    else if (cs.typeId === MessageType.abort && body.length >= 4) {
      const aborted = this.streams.get(body.readUInt32BE(0));
      if (aborted) this.dropPartial(aborted);
    }
    this.onMessage(cs.typeId, cs.streamId, cs.timestamp, body);
  }

  private setChunkSize(body: Buffer): void {
    if (body.length < 4) throw new RtmpProtocolError('bad_set_chunk_size', 'Set Chunk Size body too short');
    const size = body.readUInt32BE(0);
    // The top bit must be zero; zero would never make progress.
    if (size < 1 || size > 0x7fffffff) throw new RtmpProtocolError('bad_set_chunk_size', `Set Chunk Size ${size}`);
    this.chunkSize = Math.min(size, MAX_EFFECTIVE_CHUNK_SIZE);
  }

  private dropPartial(cs: ChunkStream): void {
    if (cs.body === undefined) return;
    this.releaseBudget(cs);
    if (cs.pooled !== undefined) this.bodyPool!.give(cs.pooled);
    cs.body = undefined;
    cs.pooled = undefined;
    cs.filled = 0;
  }

  /** Gives back what an unfinished message took, to the budget it took it from. */
  private releaseBudget(cs: ChunkStream): void {
    this.partialBytes -= cs.length;
    cs.budget?.give(cs.length);
    cs.budget = undefined;
  }
}
