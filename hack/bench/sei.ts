// The per-frame probe: an H.264 SEI NAL (user_data_unregistered, payload
// type 5) carrying the send wall clock and a per-stream sequence number,
// prepended by the publisher to every coded video frame at send time. Every
// payload byte has its top bit set (7 bits of value per byte), so the NAL
// never contains 0x00 and needs no emulation-prevention bytes, and a player
// can read it straight from the AVCC frame whatever the server did to the
// RTMP timestamps.

/** Fixed 16-byte UUID that marks our SEI (no zero bytes). */
const SEI_UUID = Buffer.from('f1c3b7e5a1d94f2b8c6e17a5b3d9e4f2', 'hex');

const TIME_BYTES = 8; // 56 bits of microseconds: until year 4254
const SEQ_BYTES = 5; // 35 bits of frame numbers
const PAYLOAD_SIZE = SEI_UUID.length + TIME_BYTES + SEQ_BYTES; // 29
// NAL header, payload type, payload size, payload, rbsp_trailing_bits.
const NAL_SIZE = 1 + 1 + 1 + PAYLOAD_SIZE + 1;
/** Bytes the probe adds to an AVCC frame (4-byte length prefix + NAL). */
export const SEI_PREFIX_SIZE = 4 + NAL_SIZE;

/** The machine's monotonic clock (CLOCK_MONOTONIC, one for every process), ms. */
function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * This process's own wall clock minus the monotonic clock, ms. The two are
 * read one after the other, so a preemption between the reads would shift the
 * offset by as long: of a few readings, the one whose monotonic bracket is
 * narrowest is kept.
 */
function measureWallMinusMonotonicMs(): number {
  let best = { bracket: Infinity, offset: 0 };
  for (let i = 0; i < 8; i++) {
    const before = monotonicMs();
    const wall = performance.timeOrigin + performance.now();
    const after = monotonicMs();
    if (after - before < best.bracket) best = { bracket: after - before, offset: wall - (before + after) / 2 };
  }
  return best.offset;
}

/**
 * The wall clock is the monotonic clock plus this offset. A load generator's
 * worker processes adopt their parent's offset (adoptClock) rather than
 * measure their own, since a frame may be stamped in one process and read in
 * another: with one offset on one monotonic clock there is no skew to measure.
 */
let wallMinusMonotonic = measureWallMinusMonotonicMs();

/** Microseconds since the epoch, sub-millisecond resolution. */
export function wallClockMicros(): number {
  return Math.round((wallMinusMonotonic + monotonicMs()) * 1000);
}

/** This process's wall clock minus the machine's monotonic clock, ms: what a worker process adopts. */
export function wallMinusMonotonicMs(): number {
  return wallMinusMonotonic;
}

/**
 * Makes wallClockMicros the clock of the process that measured
 * `parentWallMinusMonotonic`. Returns how far this process's own wall clock
 * was from it, µs (how well two processes' own readings agree).
 */
export function adoptClock(parentWallMinusMonotonic: number): number {
  const own = measureWallMinusMonotonicMs();
  wallMinusMonotonic = parentWallMinusMonotonic;
  return (own - parentWallMinusMonotonic) * 1000;
}

function writeSeven(buf: Buffer, pos: number, value: number, bytes: number): void {
  for (let i = bytes - 1; i >= 0; i--) {
    buf[pos + i] = 0x80 | (value % 128);
    value = Math.floor(value / 128);
  }
}

function readSeven(buf: Buffer, pos: number, bytes: number): number {
  let value = 0;
  for (let i = 0; i < bytes; i++) value = value * 128 + (buf[pos + i]! & 0x7f);
  return value;
}

/**
 * Returns a video tag body: the 5-byte AVC header of `body`, our SEI as the
 * first NAL (4-byte NAL lengths), then the frame's own NALs. `body` must be
 * an AVC NALU packet (codec 7, AVCPacketType 1) with 4-byte NAL lengths.
 * Written at the start of `into` when given (a sender that copies the body
 * before the next frame can reuse one buffer), else into a new one.
 */
export function withProbe(body: Buffer, seq: number, micros: number, into?: Buffer): Buffer {
  const length = body.length + SEI_PREFIX_SIZE;
  if (into && into.length < length) throw new RangeError(`withProbe: ${length} bytes do not fit in ${into.length}`);
  const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  body.copy(out, 0, 0, 5);
  let p = 5;
  out.writeUInt32BE(NAL_SIZE, p);
  p += 4;
  out[p++] = 0x06; // nal_unit_type 6: SEI
  out[p++] = 5; // user_data_unregistered
  out[p++] = PAYLOAD_SIZE;
  SEI_UUID.copy(out, p);
  p += SEI_UUID.length;
  writeSeven(out, p, micros, TIME_BYTES);
  p += TIME_BYTES;
  writeSeven(out, p, seq, SEQ_BYTES);
  p += SEQ_BYTES;
  out[p++] = 0x80;
  body.copy(out, p, 5);
  return out;
}

export interface Probe {
  seq: number;
  micros: number;
}

/**
 * Finds our SEI in a video tag body (legacy AVC NALU packet). It is the
 * first NAL when the server relays the frame untouched; a few more NALs are
 * searched in case a server inserts its own. Returns false when absent.
 */
export function readProbe(body: Buffer, out: Probe): boolean {
  if (body.length < 5 + SEI_PREFIX_SIZE || (body[0]! & 0x0f) !== 7 || body[1] !== 1) return false;
  return readProbeInNalUnits(body, 5, out);
}

/** The same in a bare sample of length-prefixed NAL units (an MP4 sample, as HLS players get it). */
export const readProbeInSample = (sample: Buffer, out: Probe): boolean => readProbeInNalUnits(sample, 0, out);

function readProbeInNalUnits(body: Buffer, start: number, out: Probe): boolean {
  let p = start;
  for (let n = 0; n < 4 && p + 4 <= body.length; n++) {
    const len = body.readUInt32BE(p);
    p += 4;
    if (len === NAL_SIZE && (body[p]! & 0x1f) === 6 && body[p + 1] === 5 && body[p + 2] === PAYLOAD_SIZE) {
      const q = p + 3;
      if (body.compare(SEI_UUID, 0, SEI_UUID.length, q, q + SEI_UUID.length) === 0) {
        out.micros = readSeven(body, q + SEI_UUID.length, TIME_BYTES);
        out.seq = readSeven(body, q + SEI_UUID.length + TIME_BYTES, SEQ_BYTES);
        return true;
      }
    }
    p += len;
  }
  return false;
}
