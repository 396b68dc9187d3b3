// AMF3, just enough to read what a Flash/AIR client (objectEncoding 3) puts in
// its commands after an AVM+ marker. Bounds, depth, the values decoded and what
// references repeat are checked as in AMF0.
import { AMF_MAX_DEPTH, AmfReferences, type AmfObject, type AmfBudget, type AmfValue } from './amf-values.ts';
import { RtmpProtocolError } from './errors.ts';

interface Traits {
  dynamic: boolean;
  externalizable: boolean;
  names: string[];
}

/** AMF3's three reference tables live as long as one AMF0 message, and share its budget. */
export class Amf3Context {
  readonly budget: AmfBudget;
  readonly strings: AmfReferences<string>;
  readonly objects: AmfReferences<AmfValue>;
  readonly traits: AmfReferences<Traits>;

  constructor(budget: AmfBudget) {
    this.budget = budget;
    this.strings = new AmfReferences(budget);
    this.objects = new AmfReferences(budget);
    this.traits = new AmfReferences(budget);
  }
}

class Amf3Decoder {
  pos: number;
  private readonly buf: Buffer;
  private readonly end: number;
  private readonly ctx: Amf3Context;

  constructor(buf: Buffer, pos: number, end: number, ctx: Amf3Context) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.ctx = ctx;
  }

  value(depth: number): AmfValue {
    if (depth > AMF_MAX_DEPTH) throw new RtmpProtocolError('amf_too_deep');
    this.ctx.budget.value();
    const marker = this.u8();
    switch (marker) {
      case 0x00: // undefined
        return undefined;
      case 0x01: // null
        return null;
      case 0x02:
        return false;
      case 0x03:
        return true;
      case 0x04: {
        const v = this.u29();
        return v & 0x10000000 ? v - 0x20000000 : v; // 29-bit two's complement
      }
      case 0x05: {
        this.need(8);
        const v = this.buf.readDoubleBE(this.pos);
        this.pos += 8;
        return v;
      }
      case 0x06:
        return this.string();
      case 0x07: // XMLDocument
      case 0x0b: // XML
        return this.referencedBytes((bytes) => bytes.toString('utf8'));
      case 0x08: {
        const header = this.u29();
        if ((header & 1) === 0) return this.ctx.objects.resolve(header >> 1);
        this.need(8);
        const date = new Date(this.buf.readDoubleBE(this.pos));
        this.pos += 8;
        this.ctx.objects.sized(this.ctx.objects.add(date), 8);
        return date;
      }
      case 0x09:
        return this.array(depth);
      case 0x0a:
        return this.object(depth);
      case 0x0c: // ByteArray: kept as a Buffer-free string-less value; commands never need its bytes
        return this.referencedBytes(() => undefined);
      default:
        throw new RtmpProtocolError('amf_bad_marker', `AMF3 marker 0x${marker.toString(16)}`);
    }
  }

  private array(depth: number): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.ctx.objects.resolve(header >> 1);
    const denseCount = header >> 1;
    const assoc: AmfObject = Object.create(null) as AmfObject;
    const dense: AmfValue[] = [];
    let hasAssoc = false;
    this.referencable(dense, () => {
      while (true) {
        const key = this.string();
        if (key === '') break;
        hasAssoc = true;
        assoc[key] = this.value(depth + 1);
      }
      if (denseCount > this.end - this.pos) throw new RtmpProtocolError('amf_truncated');
      for (let i = 0; i < denseCount; i++) dense.push(this.value(depth + 1));
    });
    if (!hasAssoc) return dense;
    dense.forEach((v, i) => (assoc[String(i)] = v));
    return assoc;
  }

  private object(depth: number): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.ctx.objects.resolve(header >> 1);
    const traits = (header & 2) === 0 ? this.ctx.traits.resolve(header >> 2) : this.traits(header);
    // An externalizable object's body is class-defined: we cannot know its length.
    if (traits.externalizable) throw new RtmpProtocolError('amf_unsupported', 'AMF3 externalizable object');
    const object: AmfObject = Object.create(null) as AmfObject;
    return this.referencable(object, () => {
      for (const name of traits.names) object[name] = this.value(depth + 1);
      if (traits.dynamic) {
        while (true) {
          const key = this.string();
          if (key === '') break;
          object[key] = this.value(depth + 1);
        }
      }
    });
  }

  /** Traits sent inline: what a later reference to them repeats is their names. */
  private traits(header: number): Traits {
    const start = this.pos;
    const externalizable = (header & 4) !== 0;
    const dynamic = (header & 8) !== 0;
    const count = header >> 4;
    this.string(); // class name
    if (count > this.end - this.pos) throw new RtmpProtocolError('amf_truncated');
    const names: string[] = [];
    for (let i = 0; i < count; i++) names.push(this.string());
    const traits = { dynamic, externalizable, names };
    this.ctx.traits.sized(this.ctx.traits.add(traits), this.pos - start);
    return traits;
  }

  private string(): string {
    const header = this.u29();
    if ((header & 1) === 0) return this.ctx.strings.resolve(header >> 1);
    const length = header >> 1;
    this.need(length);
    const s = this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    // The empty string is never sent by reference, so it is not remembered.
    if (length > 0) this.ctx.strings.sized(this.ctx.strings.add(s), length);
    return s;
  }

  private referencedBytes(convert: (bytes: Buffer) => AmfValue): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.ctx.objects.resolve(header >> 1);
    const length = header >> 1;
    this.need(length);
    const value = convert(this.buf.subarray(this.pos, this.pos + length));
    this.pos += length;
    this.ctx.objects.sized(this.ctx.objects.add(value), length);
    return value;
  }

  /** Adds `value` to the object table, fills it with `read`, and sizes it by the bytes that took and repeated. */
  private referencable<T extends AmfValue>(value: T, read: () => void): T {
    const index = this.ctx.objects.add(value);
    const start = this.pos;
    const repeated = this.ctx.budget.repeatedBytes;
    read();
    this.ctx.objects.sized(index, this.pos - start + this.ctx.budget.repeatedBytes - repeated);
    return value;
  }

  /** AMF3's variable-length 29-bit unsigned integer. */
  private u29(): number {
    let value = 0;
    for (let i = 0; i < 3; i++) {
      const b = this.u8();
      if ((b & 0x80) === 0) return (value << 7) | b;
      value = (value << 7) | (b & 0x7f);
    }
    return ((value << 8) | this.u8()) >>> 0;
  }

  private u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) throw new RtmpProtocolError('amf_truncated');
  }
}

/** Decodes one AMF3 value at `pos`; returns it and the position after it. */
export function decodeAmf3Value(buf: Buffer, pos: number, end: number, ctx: Amf3Context, depth = 0): { value: AmfValue; pos: number } {
  const decoder = new Amf3Decoder(buf, pos, end, ctx);
  const value = decoder.value(depth);
  return { value, pos: decoder.pos };
}
