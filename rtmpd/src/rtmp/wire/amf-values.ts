// What the AMF0 and AMF3 decoders produce and the bounds both enforce. They
// decode bytes from the network, so nesting, reference tables and what
// references repeat are capped.
import { RtmpProtocolError } from './errors.ts';

export type AmfValue = number | boolean | string | null | undefined | Date | AmfValue[] | AmfObject;
export interface AmfObject {
  [key: string]: AmfValue;
}

/** Nesting deeper than this is no command a real client sends. */
export const AMF_MAX_DEPTH = 32;
/** Objects, arrays, strings and traits referencable in one message; bounds the reference tables. */
const AMF_MAX_REFERENCES = 65_536;
/** What references may repeat in a message of a few bytes (a connect that names its app twice). */
const AMF_MIN_REPEATED_BYTES = 64 * 1024;

/**
 * The bytes references repeat in one message, AMF0 and AMF3 parts together.
 * A reference stands for a value already read in 2 or 3 bytes, so references
 * to values made of references decode a few bytes into a graph that walks
 * (re-encoded onMetaData, JSON) as gigabytes: what they repeat may add at
 * most the message's own size, and at least AMF_MIN_REPEATED_BYTES.
 */
export class AmfRepetition {
  /** Bytes repeated so far: the decoded values stand for the message's bytes plus these. */
  bytes = 0;
  private readonly limit: number;

  constructor(messageBytes: number) {
    this.limit = Math.max(messageBytes, AMF_MIN_REPEATED_BYTES);
  }

  add(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes > this.limit) throw new RtmpProtocolError('amf_too_large', `references repeat more than ${this.limit} bytes`);
  }
}

/**
 * One message's table of referencable values, each with the bytes it stands
 * for. A value is added before its members are read and sized once they are,
 * so a reference to a value from within it (a cycle, which nothing could
 * encode) is refused.
 */
export class AmfReferences<T> {
  private readonly values: T[] = [];
  /** Bytes each value stands for (its own and what its references repeat); -1 while it is still being read. */
  private readonly sizes: number[] = [];
  private readonly repetition: AmfRepetition;

  constructor(repetition: AmfRepetition) {
    this.repetition = repetition;
  }

  /** Adds a value about to be read; its index for `sized`, or -1 once the table is full (it is then never referenced). */
  add(value: T): number {
    if (this.values.length >= AMF_MAX_REFERENCES) return -1;
    this.sizes.push(-1);
    return this.values.push(value) - 1;
  }

  /** The value at `index` is read: it stands for `bytes`. */
  sized(index: number, bytes: number): void {
    if (index >= 0) this.sizes[index] = bytes;
  }

  /** The value a reference names; what it repeats counts against the message's repetition budget. */
  resolve(index: number): T {
    const size = this.sizes[index];
    if (size === undefined) throw new RtmpProtocolError('amf_bad_reference');
    if (size < 0) throw new RtmpProtocolError('amf_bad_reference', 'a reference to a value from within it');
    this.repetition.add(size);
    return this.values[index]!;
  }
}
