// AMF3, just enough to read what a Flash/AIR client (objectEncoding 3) puts in
// its commands after an AVM+ marker. Bounds and depth are checked as in AMF0.
import { AMF_MAX_DEPTH, AMF_MAX_REFERENCES, type AmfObject, type AmfValue } from './amf-values.ts';
import { RtmpProtocolError } from './errors.ts';

interface Traits {
  dynamic: boolean;
  externalizable: boolean;
  names: string[];
}

/** AMF3's three reference tables live as long as one AMF0 message. */
export class Amf3Context {
  readonly strings: string[] = [];
  readonly objects: AmfValue[] = [];
  readonly traits: Traits[] = [];
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
        if ((header & 1) === 0) return this.objectRef(header >> 1);
        this.need(8);
        const date = new Date(this.buf.readDoubleBE(this.pos));
        this.pos += 8;
        this.remember(date);
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
    if ((header & 1) === 0) return this.objectRef(header >> 1);
    const denseCount = header >> 1;
    const assoc: AmfObject = Object.create(null) as AmfObject;
    const dense: AmfValue[] = [];
    let hasAssoc = false;
    this.remember(dense);
    while (true) {
      const key = this.string();
      if (key === '') break;
      hasAssoc = true;
      assoc[key] = this.value(depth + 1);
    }
    if (denseCount > this.end - this.pos) throw new RtmpProtocolError('amf_truncated');
    for (let i = 0; i < denseCount; i++) dense.push(this.value(depth + 1));
    if (!hasAssoc) return dense;
    dense.forEach((v, i) => (assoc[String(i)] = v));
    return assoc;
  }

  private object(depth: number): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.objectRef(header >> 1);
    let traits: Traits;
    if ((header & 2) === 0) {
      const t = this.ctx.traits[header >> 2];
      if (!t) throw new RtmpProtocolError('amf_bad_reference');
      traits = t;
    } else {
      const externalizable = (header & 4) !== 0;
      const dynamic = (header & 8) !== 0;
      const count = header >> 4;
      this.string(); // class name
      if (count > this.end - this.pos) throw new RtmpProtocolError('amf_truncated');
      const names: string[] = [];
      for (let i = 0; i < count; i++) names.push(this.string());
      traits = { dynamic, externalizable, names };
      if (this.ctx.traits.length < AMF_MAX_REFERENCES) this.ctx.traits.push(traits);
    }
    // An externalizable object's body is class-defined: we cannot know its length.
    if (traits.externalizable) throw new RtmpProtocolError('amf_unsupported', 'AMF3 externalizable object');
    const object: AmfObject = Object.create(null) as AmfObject;
    this.remember(object);
    for (const name of traits.names) object[name] = this.value(depth + 1);
    if (traits.dynamic) {
      while (true) {
        const key = this.string();
        if (key === '') break;
        object[key] = this.value(depth + 1);
      }
    }
    return object;
  }

  private string(): string {
    const header = this.u29();
    if ((header & 1) === 0) {
      const s = this.ctx.strings[header >> 1];
      if (s === undefined) throw new RtmpProtocolError('amf_bad_reference');
      return s;
    }
    const length = header >> 1;
    this.need(length);
    const s = this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    // The empty string is never sent by reference, so it is not remembered.
    if (length > 0 && this.ctx.strings.length < AMF_MAX_REFERENCES) this.ctx.strings.push(s);
    return s;
  }

  private referencedBytes(convert: (bytes: Buffer) => AmfValue): AmfValue {
    const header = this.u29();
    if ((header & 1) === 0) return this.objectRef(header >> 1);
    const length = header >> 1;
    this.need(length);
    const value = convert(this.buf.subarray(this.pos, this.pos + length));
    this.pos += length;
    this.remember(value);
    return value;
  }

  private objectRef(index: number): AmfValue {
    if (index >= this.ctx.objects.length) throw new RtmpProtocolError('amf_bad_reference');
    return this.ctx.objects[index];
  }

  private remember(value: AmfValue): void {
    if (this.ctx.objects.length < AMF_MAX_REFERENCES) this.ctx.objects.push(value);
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
