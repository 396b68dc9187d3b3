/**
 * MSB-first bit writer for hand-made parameter sets and sequence headers: x265
 * never writes scaling lists, PCM or reference sets in its SPS, and no encoder
 * writes the extreme timing fields the frame-rate cap is for.
 */
export class BitWriter {
  #bits: number[] = [];
  u(n: number, value: number): this {
    for (let i = n - 1; i >= 0; i--) this.#bits.push(Math.floor(value / 2 ** i) & 1);
    return this;
  }
  flag(on: boolean): this {
    return this.u(1, on ? 1 : 0);
  }
  /** ue(v), which is also AV1's uvlc() below 2^32 - 1. */
  ue(value: number): this {
    const length = Math.floor(Math.log2(value + 1));
    return this.u(length, 0).u(length + 1, value + 1);
  }
  se(value: number): this {
    return this.ue(value > 0 ? 2 * value - 1 : -2 * value);
  }
  /** The bits so far, zero-padded to a whole byte. */
  bytes(): Buffer {
    while (this.#bits.length % 8) this.u(1, 0);
    const out: number[] = [];
    for (let i = 0; i < this.#bits.length; i += 8) out.push(parseInt(this.#bits.slice(i, i + 8).join(''), 2));
    return Buffer.from(out);
  }
  /** The NAL unit: rbsp_trailing_bits, then an emulation prevention byte after every two zero bytes. */
  nal(): Buffer {
    const out: number[] = [];
    let zeros = 0;
    for (const byte of this.u(1, 1).bytes()) {
      if (zeros >= 2 && byte <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(byte);
      zeros = byte === 0 ? zeros + 1 : 0;
    }
    return Buffer.from(out);
  }
}
