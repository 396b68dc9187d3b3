import { MediaParseError } from './errors.ts';

/**
 * MSB-first bit reader with Exp-Golomb helpers.
 *
 * With `emulationPrevention` (H.264/HEVC NAL payloads) every 0x03 that follows
 * two 0x00 bytes is skipped on the fly, so the caller never has to copy the
 * NAL unit into an unescaped buffer. Reading past `end` throws
 * {@link MediaParseError}.
 */
export class BitReader {
  readonly #data: Buffer;
  readonly #end: number;
  readonly #ep: boolean;
  #pos: number;
  #zeros = 0;
  #cur = 0;
  #left = 0;

  constructor(data: Buffer, start = 0, end = data.length, emulationPrevention = true) {
    this.#data = data;
    this.#pos = start;
    this.#end = Math.min(end, data.length);
    this.#ep = emulationPrevention;
  }

  #load(): void {
    if (this.#pos >= this.#end) throw new MediaParseError('bitstream truncated');
    let b = this.#data[this.#pos++]!;
    if (this.#ep) {
      if (this.#zeros >= 2 && b === 3) {
        this.#zeros = 0;
        if (this.#pos >= this.#end) throw new MediaParseError('bitstream truncated');
        b = this.#data[this.#pos++]!;
      }
      this.#zeros = b === 0 ? this.#zeros + 1 : 0;
    }
    this.#cur = b;
    this.#left = 8;
  }

  /** One bit. */
  bit(): number {
    if (this.#left === 0) this.#load();
    this.#left--;
    return (this.#cur >> this.#left) & 1;
  }

  /** Unsigned value of `n` bits, 0 <= n <= 32. */
  u(n: number): number {
    let v = 0;
    while (n > 0) {
      if (this.#left === 0) this.#load();
      const take = n < this.#left ? n : this.#left;
      this.#left -= take;
      v = v * (1 << take) + ((this.#cur >> this.#left) & ((1 << take) - 1));
      n -= take;
    }
    return v;
  }

  /** Skips `n` bits. */
  skip(n: number): void {
    while (n > 0) {
      const take = n > 24 ? 24 : n;
      this.u(take);
      n -= take;
    }
  }

  /** Bits not read yet: exact without emulation prevention, else at most this many. */
  bitsLeft(): number {
    return (this.#end - this.#pos) * 8 + this.#left;
  }

  /** Skips to the next byte boundary (byte_alignment()). */
  byteAlign(): void {
    this.#left = 0;
  }

  /** Boolean flag (one bit). */
  flag(): boolean {
    return this.bit() === 1;
  }

  /** ue(v): unsigned Exp-Golomb. */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      if (++zeros > 31) throw new MediaParseError('exp-golomb code too long');
    }
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.u(zeros);
  }

  /** se(v): signed Exp-Golomb. */
  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : -(k / 2);
  }

  /**
   * AV1 uvlc() (4.10.3): 32 or more leading zeros are 2^32 - 1 with no value
   * bits, but the zeros run on to their 1 bit, so the next field starts after it.
   */
  uvlc(): number {
    let zeros = 0;
    while (this.bit() === 0) zeros++;
    return zeros >= 32 ? 0xffffffff : this.u(zeros) + 2 ** zeros - 1;
  }
}

/**
 * The big-endian length in front of a NAL unit (1 to 4 bytes), read byte by
 * byte: Buffer's readUIntBE boxed its result in a heap number per call on the
 * relay's keyframe scan.
 */
export function readNalLength(frame: Buffer, pos: number, size: number): number {
  let length = 0;
  for (let i = 0; i < size; i++) length = length * 256 + frame[pos + i]!;
  return length;
}
