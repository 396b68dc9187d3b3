// ISO BMFF boxes for the init segment, built from parts (it is written once
// per stream and codec change, so clarity wins over speed here; the media
// fragments, written several times a second, have their own writer).

/** A box: 32-bit size, four-character type, then the payload parts. */
export function box(type: string, ...payload: Buffer[]): Buffer {
  const size = 8 + payload.reduce((sum, part) => sum + part.length, 0);
  const header = Buffer.allocUnsafe(8);
  header.writeUInt32BE(size, 0);
  header.write(type, 4, 4, 'latin1');
  return Buffer.concat([header, ...payload], size);
}

/** A FullBox: a box whose payload starts with an 8-bit version and 24-bit flags. */
export function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  const versionAndFlags = Buffer.allocUnsafe(4);
  versionAndFlags.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, versionAndFlags, ...payload);
}

/** Big-endian unsigned 32-bit integers. */
export function u32(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  values.forEach((v, i) => out.writeUInt32BE(v >>> 0, 4 * i));
  return out;
}

/** Big-endian unsigned 16-bit integers. */
export function u16(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(2 * values.length);
  values.forEach((v, i) => out.writeUInt16BE(v & 0xffff, 2 * i));
  return out;
}

export const u8 = (...values: number[]): Buffer => Buffer.from(values.map((v) => v & 0xff));

export const zeros = (length: number): Buffer => Buffer.alloc(length);

/** The identity transformation matrix of mvhd and tkhd. */
export const UNITY_MATRIX = u32(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000);
