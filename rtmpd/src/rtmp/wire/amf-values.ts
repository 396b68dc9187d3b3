// What the AMF0 and AMF3 decoders produce and the bounds both enforce. They
// decode bytes from the network, so nesting, reference tables, the values a
// message decodes to and what references repeat are capped.
import { RtmpProtocolError } from './errors.ts';

export type AmfValue = number | boolean | string | null | undefined | Date | AmfValue[] | AmfObject;
export interface AmfObject {
  [key: string]: AmfValue;
}

/** Nesting deeper than this is no command a real client sends. */
export const AMF_MAX_DEPTH = 32;
/** Objects, arrays, strings and traits referencable in one message; bounds the reference tables. */
const AMF_MAX_REFERENCES = 65_536;
/**
 * Values one message may decode to. A JavaScript object costs about 200 bytes
 * of heap for the 4 bytes of an empty AMF0 object, so 8 MiB of them would be
 * 400 MiB; this many are at most about 13 MiB. No client's command or
 * onMetaData comes near it.
 */
export const AMF_MAX_VALUES = 65_536;
/** What references may repeat in a message of a few bytes (a connect that names its app twice). */
const AMF_MIN_REPEATED_BYTES = 64 * 1024;

/**
 * What one message may decode to, its AMF0 and AMF3 parts together: at most
 * AMF_MAX_VALUES values, and references that repeat at most the message's own
 * size (AMF_MIN_REPEATED_BYTES at least). A reference stands for a value
 * already read in 2 or 3 bytes, so references to values made of references
 * decode a few bytes into a graph that walks (re-encoded onMetaData, JSON) as
 * gigabytes.
 */
export class AmfBudget {
  /** Bytes repeated so far: the decoded values stand for the message's bytes plus these. */
  repeatedBytes = 0;
  private values = 0;
  private readonly maxRepeatedBytes: number;

  constructor(messageBytes: number) {
    this.maxRepeatedBytes = Math.max(messageBytes, AMF_MIN_REPEATED_BYTES);
  }

  /** One more value decoded. */
  value(): void {
    if (++this.values > AMF_MAX_VALUES) throw new RtmpProtocolError('amf_too_large', `more than ${AMF_MAX_VALUES} values`);
  }

  /** A reference repeats `bytes`. */
  repeat(bytes: number): void {
    this.repeatedBytes += bytes;
    if (this.repeatedBytes > this.maxRepeatedBytes)
      throw new RtmpProtocolError('amf_too_large', `references repeat more than ${this.maxRepeatedBytes} bytes`);
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
  private readonly budget: AmfBudget;

  constructor(budget: AmfBudget) {
    this.budget = budget;
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

  /** The value a reference names; what it repeats counts against the message's budget. */
  resolve(index: number): T {
    const size = this.sizes[index];
    if (size === undefined) throw new RtmpProtocolError('amf_bad_reference');
    if (size < 0) throw new RtmpProtocolError('amf_bad_reference', 'a reference to a value from within it');
    this.budget.repeat(size);
    return this.values[index]!;
  }
}
