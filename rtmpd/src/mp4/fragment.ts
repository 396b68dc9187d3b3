// One fMP4 media fragment (moof + mdat) for the samples of each track
// gathered since the last one. Written several times a second per stream,
// so samples are collected in reused arrays and a growing byte buffer, and
// the fragment is one allocation written with byte stores.

/** sample_depends_on = 2: a sync sample (keyframe, or any audio frame). */
const SYNC_SAMPLE = 0x02000000;
/** sample_depends_on = 1, sample_is_non_sync_sample = 1. */
const NON_SYNC_SAMPLE = 0x01010000;

const TRUN_DATA_OFFSET = 0x000001;
const TRUN_DURATION = 0x000100;
const TRUN_SIZE = 0x000200;
const TRUN_FLAGS = 0x000400;
const TRUN_COMPOSITION = 0x000800;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;

/**
 * Bytes of samples a fragment gathers at most before a sample is added: its
 * cuts go by media time, so without it a fragment, and what a recorder or
 * HLS muxer holds while gathering it, grew with the publisher's bit rate (a
 * 10 s fragment at 50 Mb/s is 60 MiB) or without end (timestamps that stand
 * still).
 */
export const MAX_FRAGMENT_BYTES = 8 * 1024 * 1024;

/** The samples of one track waiting for the next fragment. */
export class TrackRun {
  readonly trackId: number;
  /** Video carries composition offsets (B-frames); audio does not. */
  readonly withComposition: boolean;
  /** Decode time of the first sample, in the track's timescale. */
  baseTime = 0;
  count = 0;
  private durations: number[] = [];
  private sizes: number[] = [];
  private flags: number[] = [];
  private compositions: number[] = [];
  private data = Buffer.allocUnsafeSlow(64 * 1024);
  private dataLength = 0;

  constructor(trackId: number, withComposition: boolean) {
    this.trackId = trackId;
    this.withComposition = withComposition;
  }

  get bytes(): number {
    return this.dataLength;
  }

  /** Copies a sample's bytes in (the packet body may be a view of a buffer that is about to be reused). */
  add(decodeTime: number, duration: number, payload: Buffer, sync: boolean, composition: number): void {
    if (this.count === 0) this.baseTime = decodeTime;
    const i = this.count++;
    this.durations[i] = duration;
    this.sizes[i] = payload.length;
    this.flags[i] = sync ? SYNC_SAMPLE : NON_SYNC_SAMPLE;
    this.compositions[i] = composition;
    this.reserve(payload.length);
    payload.copy(this.data, this.dataLength);
    this.dataLength += payload.length;
  }

  /** Sets the duration of the newest sample, known only once the next one arrives. */
  setLastDuration(duration: number): void {
    if (this.count > 0) this.durations[this.count - 1] = duration;
  }

  get lastDuration(): number {
    return this.count > 0 ? this.durations[this.count - 1]! : 0;
  }

  /** Whether the first sample is a sync sample: a fragment that starts here can be decoded on its own. */
  get startsWithSync(): boolean {
    return this.count > 0 && this.flags[0] === SYNC_SAMPLE;
  }

  /** Sum of the sample durations, in the track's timescale. */
  get duration(): number {
    let sum = 0;
    for (let i = 0; i < this.count; i++) sum += this.durations[i]!;
    return sum;
  }

  clear(): void {
    this.count = 0;
    this.dataLength = 0;
  }

  /** Bytes of this run's traf box. */
  trafSize(): number {
    return 8 + 16 + 20 + 20 + this.count * (this.withComposition ? 16 : 12);
  }

  /** Writes traf at `at`; `dataOffset` is where this run's data sits, counted from the moof's first byte. */
  writeTraf(out: Buffer, at: number, dataOffset: number): number {
    let p = writeHeader(out, at, this.trafSize(), 'traf');
    p = writeHeader(out, p, 16, 'tfhd', 0, TFHD_DEFAULT_BASE_IS_MOOF);
    out.writeUInt32BE(this.trackId, p);
    p += 4;
    p = writeHeader(out, p, 20, 'tfdt', 1, 0);
    out.writeUInt32BE(Math.floor(this.baseTime / 0x1_0000_0000), p);
    out.writeUInt32BE(this.baseTime >>> 0, p + 4);
    p += 8;
    const perSample = this.withComposition ? 16 : 12;
    const trunFlags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | (this.withComposition ? TRUN_COMPOSITION : 0);
    p = writeHeader(out, p, 20 + this.count * perSample, 'trun', 1, trunFlags);
    out.writeUInt32BE(this.count, p);
    out.writeInt32BE(dataOffset, p + 4);
    p += 8;
    for (let i = 0; i < this.count; i++) {
      out.writeUInt32BE(this.durations[i]!, p);
      out.writeUInt32BE(this.sizes[i]!, p + 4);
      out.writeUInt32BE(this.flags[i]!, p + 8);
      if (this.withComposition) out.writeInt32BE(this.compositions[i]!, p + 12);
      p += perSample;
    }
    return p;
  }

  copyData(out: Buffer, at: number): void {
    this.data.copy(out, at, 0, this.dataLength);
  }

  private reserve(more: number): void {
    if (this.dataLength + more <= this.data.length) return;
    // Doubling stops at MAX_FRAGMENT_BYTES, past which a fragment takes one more sample at most.
    const grown = Buffer.allocUnsafeSlow(Math.max(Math.min(this.data.length * 2, MAX_FRAGMENT_BYTES), this.dataLength + more));
    this.data.copy(grown, 0, 0, this.dataLength);
    this.data = grown;
  }
}

/** moof (mfhd + one traf per run with samples) + mdat, in one buffer; the runs are cleared. */
export function writeFragment(sequence: number, runs: readonly TrackRun[]): Buffer {
  let moofSize = 8 + 16;
  let dataSize = 0;
  for (const run of runs) {
    if (run.count === 0) continue;
    moofSize += run.trafSize();
    dataSize += run.bytes;
  }
  const out = Buffer.allocUnsafe(moofSize + 8 + dataSize);
  let p = writeHeader(out, 0, moofSize, 'moof');
  p = writeHeader(out, p, 16, 'mfhd', 0, 0);
  out.writeUInt32BE(sequence >>> 0, p);
  p += 4;
  let dataAt = moofSize + 8;
  for (const run of runs) {
    if (run.count === 0) continue;
    p = run.writeTraf(out, p, dataAt);
    dataAt += run.bytes;
  }
  p = writeHeader(out, p, 8 + dataSize, 'mdat');
  for (const run of runs) {
    if (run.count === 0) continue;
    run.copyData(out, p);
    p += run.bytes;
    run.clear();
  }
  return out;
}

/** Writes a box header (and FullBox version/flags when given); returns the position after it. */
function writeHeader(out: Buffer, at: number, size: number, type: string, version?: number, flags?: number): number {
  out.writeUInt32BE(size, at);
  out.write(type, at + 4, 4, 'latin1');
  if (version === undefined) return at + 8;
  out.writeUInt32BE(((version << 24) | (flags ?? 0)) >>> 0, at + 8);
  return at + 12;
}
