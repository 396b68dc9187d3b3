// AMF0 (Action Message Format), the encoding of RTMP commands and data
// messages. The decoder is fed bytes from the network, so every length is
// checked against what is left, nesting is bounded, and so are the values a
// message decodes to and what references repeat; anything malformed is a
// RtmpProtocolError. Objects decode to plain objects with a null prototype so
// a key like "__proto__" cannot reach Object.prototype.
import { AMF_MAX_DEPTH, AmfReferences, AmfBudget, type AmfObject, type AmfValue } from './amf-values.ts';
import { decodeAmf3Value, Amf3Context } from './amf3.ts';
import { RtmpProtocolError } from './errors.ts';

const Amf0Marker = {
  number: 0x00,
  boolean: 0x01,
  string: 0x02,
  object: 0x03,
  movieClip: 0x04,
  null: 0x05,
  undefined: 0x06,
  reference: 0x07,
  ecmaArray: 0x08,
  objectEnd: 0x09,
  strictArray: 0x0a,
  date: 0x0b,
  longString: 0x0c,
  unsupported: 0x0d,
  recordSet: 0x0e,
  xmlDocument: 0x0f,
  typedObject: 0x10,
  avmPlus: 0x11,
} as const;

export class Amf0Reader {
  private readonly buf: Buffer;
  pos: number;
  private readonly end: number;
  private readonly budget: AmfBudget;
  private readonly references: AmfReferences<AmfValue>;
  private amf3: Amf3Context | undefined;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.budget = new AmfBudget(end - start);
    this.references = new AmfReferences(this.budget);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Decodes every value up to the end of the buffer. */
  readAll(): AmfValue[] {
    const values: AmfValue[] = [];
    while (this.pos < this.end) values.push(this.readValue());
    return values;
  }

  readValue(depth = 0): AmfValue {
    if (depth > AMF_MAX_DEPTH) throw new RtmpProtocolError('amf_too_deep');
    this.budget.value();
    const marker = this.u8();
    switch (marker) {
      case Amf0Marker.number:
        return this.f64();
      case Amf0Marker.boolean:
        return this.u8() !== 0;
      case Amf0Marker.string:
        return this.utf8(this.u16());
      case Amf0Marker.longString:
      case Amf0Marker.xmlDocument:
        return this.utf8(this.u32());
      case Amf0Marker.object:
        return this.readObject(depth);
      case Amf0Marker.typedObject: {
        this.utf8(this.u16()); // class name: meaningless to a media server
        return this.readObject(depth);
      }
      case Amf0Marker.ecmaArray: {
        this.u32(); // the count is only a hint; the object-end marker is authoritative
        return this.readObject(depth);
      }
      case Amf0Marker.strictArray: {
        const count = this.u32();
        // Each element takes at least one byte, so a count beyond the bytes left is a lie.
        if (count > this.remaining) throw new RtmpProtocolError('amf_truncated', `strict array of ${count} in ${this.remaining} bytes`);
        const array: AmfValue[] = [];
        return this.referencable(array, () => {
          for (let i = 0; i < count; i++) array.push(this.readValue(depth + 1));
        });
      }
      case Amf0Marker.date: {
        const ms = this.f64();
        this.u16(); // time zone: reserved, always 0
        return new Date(ms);
      }
      case Amf0Marker.null:
        return null;
      case Amf0Marker.undefined:
      case Amf0Marker.unsupported:
        return undefined;
      case Amf0Marker.reference:
        return this.references.resolve(this.u16());
      case Amf0Marker.avmPlus: {
        this.amf3 ??= new Amf3Context(this.budget);
        const { value, pos } = decodeAmf3Value(this.buf, this.pos, this.end, this.amf3, depth + 1);
        this.pos = pos;
        return value;
      }
      default:
        throw new RtmpProtocolError('amf_bad_marker', `AMF0 marker 0x${marker.toString(16)}`);
    }
  }

  /** An object's properties up to its end marker. */
  private readObject(depth: number): AmfObject {
    const target = Object.create(null) as AmfObject;
    return this.referencable(target, () => {
      while (true) {
        // Some encoders end the last ECMA array at the buffer's end without the end marker.
        if (this.remaining === 0) return;
        const keyLength = this.u16();
        // An empty key followed by the object-end marker closes the object.
        if (keyLength === 0 && this.remaining > 0 && this.buf[this.pos] === Amf0Marker.objectEnd) {
          this.pos++;
          return;
        }
        const key = this.utf8(keyLength);
        target[key] = this.readValue(depth + 1);
      }
    });
  }

  /** Adds `value` to the reference table, fills it with `read`, and sizes it by the bytes that took and repeated. */
  private referencable<T extends AmfValue>(value: T, read: () => void): T {
    const index = this.references.add(value);
    const start = this.pos;
    const repeated = this.budget.repeatedBytes;
    read();
    this.references.sized(index, this.pos - start + this.budget.repeatedBytes - repeated);
    return value;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) throw new RtmpProtocolError('amf_truncated');
  }

  private u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  private u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  private f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  private utf8(length: number): string {
    this.need(length);
    const s = this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return s;
  }
}

/** Decodes a whole AMF0 message body into its values. */
export function decodeAmf0(buf: Buffer, start = 0): AmfValue[] {
  return new Amf0Reader(buf, start).readAll();
}

/**
 * Marks an object to be encoded as an AMF0 ECMA array (onMetaData's usual
 * form) instead of an anonymous object.
 */
export class EcmaArray {
  readonly entries: AmfObject;
  constructor(entries: AmfObject) {
    this.entries = entries;
  }
}

export type AmfEncodable = AmfValue | EcmaArray | { [key: string]: AmfEncodable } | AmfEncodable[];

/** A growable AMF0 encoder; commands are small, so it starts small. */
class Amf0Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  write(value: AmfEncodable): this {
    if (typeof value === 'number') {
      this.ensure(9);
      this.buf[this.pos++] = Amf0Marker.number;
      this.pos = this.buf.writeDoubleBE(value, this.pos);
    } else if (typeof value === 'boolean') {
      this.ensure(2);
      this.buf[this.pos++] = Amf0Marker.boolean;
      this.buf[this.pos++] = value ? 1 : 0;
    } else if (typeof value === 'string') {
      const length = Buffer.byteLength(value);
      const long = length > 0xffff;
      this.ensure(5);
      this.buf[this.pos++] = long ? Amf0Marker.longString : Amf0Marker.string;
      this.pos = long ? this.buf.writeUInt32BE(length, this.pos) : this.buf.writeUInt16BE(length, this.pos);
      this.raw(value, length);
    } else if (value === null) {
      this.ensure(1);
      this.buf[this.pos++] = Amf0Marker.null;
    } else if (value === undefined) {
      this.ensure(1);
      this.buf[this.pos++] = Amf0Marker.undefined;
    } else if (value instanceof Date) {
      this.ensure(11);
      this.buf[this.pos++] = Amf0Marker.date;
      this.pos = this.buf.writeDoubleBE(value.getTime(), this.pos);
      this.pos = this.buf.writeUInt16BE(0, this.pos);
    } else if (Array.isArray(value)) {
      this.ensure(5);
      this.buf[this.pos++] = Amf0Marker.strictArray;
      this.pos = this.buf.writeUInt32BE(value.length, this.pos);
      for (const item of value) this.write(item);
    } else if (value instanceof EcmaArray) {
      const keys = Object.keys(value.entries);
      this.ensure(5);
      this.buf[this.pos++] = Amf0Marker.ecmaArray;
      this.pos = this.buf.writeUInt32BE(keys.length, this.pos);
      this.properties(value.entries as Record<string, AmfEncodable>);
    } else {
      this.ensure(1);
      this.buf[this.pos++] = Amf0Marker.object;
      this.properties(value as Record<string, AmfEncodable>);
    }
    return this;
  }

  /** The encoded bytes, trimmed to size (a copy, so the writer's slack is not kept alive). */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  private properties(object: Record<string, AmfEncodable>): void {
    for (const [key, item] of Object.entries(object)) {
      const length = Buffer.byteLength(key);
      if (length > 0xffff) continue; // a key AMF0 cannot carry
      this.ensure(2);
      this.pos = this.buf.writeUInt16BE(length, this.pos);
      this.raw(key, length);
      this.write(item);
    }
    this.ensure(3);
    this.pos = this.buf.writeUInt16BE(0, this.pos);
    this.buf[this.pos++] = Amf0Marker.objectEnd;
  }

  private raw(s: string, length: number): void {
    this.ensure(length);
    this.pos += this.buf.write(s, this.pos, length, 'utf8');
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/** Encodes values one after another, as a command or data message body. */
export function encodeAmf0(...values: AmfEncodable[]): Buffer {
  const writer = new Amf0Writer();
  for (const value of values) writer.write(value);
  return writer.toBuffer();
}
