import { MediaParseError } from '../codec/errors.ts';
import { mediaKindOfTagType, type MediaKind } from './media-kind.ts';

export interface FlvFileHeader {
  version: number;
  hasAudio: boolean;
  hasVideo: boolean;
}

export interface FlvTagRecord {
  kind: MediaKind;
  /** Milliseconds, TimestampExtended applied. */
  timestamp: number;
  /**
   * The tag body. A subarray of the pushed chunk when the tag arrived whole,
   * so don't reuse the chunk's memory while records are alive.
   */
  body: Buffer;
}

/** A tag whose body is larger than the demuxer takes: refused from its header, before its body is held. */
export class FlvTagTooLargeError extends MediaParseError {
  override name = 'FlvTagTooLargeError';

  readonly size: number;
  readonly limit: number;

  constructor(size: number, limit: number) {
    super(`FLV tag of ${size} bytes exceeds the limit of ${limit}`);
    this.size = size;
    this.limit = limit;
  }
}

/**
 * Incremental FLV parser: feed it the byte stream in chunks of any size.
 * Validates the signature, tag types and every PreviousTagSize; throws
 * MediaParseError on garbage (after which the demuxer is unusable). A tag's
 * size field has 24 bits, so a tag holds less than 16 MiB; `maxTagBytes`
 * bounds the body lower, so a partial tag holds at most that plus its header
 * and the chunk that brought it. Tags that arrive whole are not copied; a tag
 * split across chunks is assembled with one concat.
 */
export class FlvDemuxer {
  readonly #maxTagBytes: number;
  #header: FlvFileHeader | undefined;
  /** Pending bytes not yet consumed, as a list to avoid repeated concats. */
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes needed before the next parse step can make progress. */
  #need = 13;
  #failed = false;

  constructor({ maxTagBytes = 0xffffff }: { maxTagBytes?: number } = {}) {
    this.#maxTagBytes = maxTagBytes;
  }

  /** The file header once it has been read. */
  get header(): FlvFileHeader | undefined {
    return this.#header;
  }

  /** Feeds bytes; returns the tags completed by them (possibly none). */
  push(chunk: Buffer): FlvTagRecord[] {
    if (this.#failed) throw new MediaParseError('FLV demuxer already failed');
    const tags: FlvTagRecord[] = [];
    if (chunk.length === 0) return tags;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered < this.#need) return tags;
    const data = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    let pos = 0;
    try {
      if (this.#header === undefined) {
        pos = this.#parseHeader(data);
        if (pos < 0) {
          this.#keep(data, 0);
          return tags;
        }
      }
      while (data.length - pos >= 11) {
        const type = data[pos]!;
        if (type & 0xe0) throw new MediaParseError(`FLV tag type byte 0x${type.toString(16)} has reserved/filter bits set`);
        const kind = mediaKindOfTagType(type);
        if (kind === undefined) throw new MediaParseError(`unknown FLV tag type ${type}`);
        const size = (data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!;
        if (size > this.#maxTagBytes) throw new FlvTagTooLargeError(size, this.#maxTagBytes);
        const total = 11 + size + 4;
        if (data.length - pos < total) {
          this.#need = total;
          break;
        }
        const prev = data.readUInt32BE(pos + 11 + size);
        if (prev !== 11 + size) throw new MediaParseError(`FLV PreviousTagSize ${prev} does not match tag size ${11 + size}`);
        const timestamp = ((data[pos + 7]! << 24) | (data[pos + 4]! << 16) | (data[pos + 5]! << 8) | data[pos + 6]!) >>> 0;
        tags.push({ kind, timestamp, body: data.subarray(pos + 11, pos + 11 + size) });
        pos += total;
        this.#need = 11;
      }
    } catch (err) {
      this.#failed = true;
      throw err;
    }
    this.#keep(data, pos);
    return tags;
  }

  /** Throws when the stream ended in the middle of the header or a tag. */
  end(): void {
    if (this.#failed) throw new MediaParseError('FLV demuxer already failed');
    if (this.#header === undefined) throw new MediaParseError('FLV stream ended before the file header');
    if (this.#buffered > 0) throw new MediaParseError(`FLV stream ended inside a tag (${this.#buffered} bytes left)`);
  }

  #keep(data: Buffer, pos: number): void {
    if (pos >= data.length) {
      this.#chunks = [];
      this.#buffered = 0;
    } else {
      this.#chunks = [pos === 0 ? data : data.subarray(pos)];
      this.#buffered = data.length - pos;
    }
  }

  /** Returns the offset after the header + PreviousTagSize0, or -1 when more bytes are needed. */
  #parseHeader(data: Buffer): number {
    if (data[0] !== 0x46 || data[1] !== 0x4c || data[2] !== 0x56) throw new MediaParseError('not an FLV stream (bad signature)');
    const version = data[3]!;
    if (version !== 1) throw new MediaParseError(`unsupported FLV version ${version}`);
    const flags = data[4]!;
    const dataOffset = data.readUInt32BE(5);
    if (dataOffset < 9 || dataOffset > 1024) throw new MediaParseError(`FLV DataOffset ${dataOffset} invalid`);
    if (data.length < dataOffset + 4) {
      this.#need = dataOffset + 4;
      return -1;
    }
    const prev0 = data.readUInt32BE(dataOffset);
    if (prev0 !== 0) throw new MediaParseError(`FLV PreviousTagSize0 is ${prev0}, expected 0`);
    this.#header = { version, hasAudio: (flags & 4) !== 0, hasVideo: (flags & 1) !== 0 };
    this.#need = 11;
    return dataOffset + 4;
  }
}
