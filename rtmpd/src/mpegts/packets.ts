// MPEG-TS (ISO/IEC 13818-1) packets for one program: the PAT and PMT that
// open every HLS segment (a player may start at any of them), and PES
// packets split into 188-byte transport packets, the last one filled up by
// adaptation-field stuffing. Pure: bytes in, bytes out; the segmenter
// decides what goes where.

export const PACKET_SIZE = 188;
const HEADER_SIZE = 4;
const SYNC_BYTE = 0x47;
const PAT_PID = 0;
const PMT_PID = 0x1000;
export const VIDEO_PID = 0x100;
export const AUDIO_PID = 0x101;
const PROGRAM_NUMBER = 1;

/** stream_type of the PMT (13818-1 table 2-34, and its amendments for AVC and HEVC). */
export const StreamType = {
  mpeg1Audio: 0x03,
  mpeg2Audio: 0x04,
  adtsAac: 0x0f,
  h264: 0x1b,
  hevc: 0x24,
} as const;
export type StreamType = (typeof StreamType)[keyof typeof StreamType];

/** PES stream_id of the first video and audio elementary streams. */
export const VIDEO_STREAM_ID = 0xe0;
export const AUDIO_STREAM_ID = 0xc0;

/** 33-bit timestamps (PTS, DTS, PCR base) wrap here. */
const TIMESTAMP_WRAP = 2 ** 33;

export interface ElementaryStream {
  pid: number;
  type: StreamType;
}

export interface Pes {
  pid: number;
  streamId: number;
  /** 90 kHz. */
  pts: number;
  /** 90 kHz; left out of the header when it equals pts. */
  dts: number;
  /** The payload, in pieces (start codes and NAL units, an ADTS header and its frame) written without joining them. */
  payload: readonly Buffer[];
  /** 27 MHz clock base in 90 kHz units, carried in the first packet's adaptation field (the PCR PID's PES). */
  pcr?: number;
  /** A keyframe, or audio: a decoder may start here (random_access_indicator). */
  randomAccess: boolean;
}

const INITIAL_BYTES = 64 * PACKET_SIZE;

/** Transport packets of one segment, in one growing buffer, with each PID's continuity counter. */
export class TsWriter {
  private data = Buffer.allocUnsafe(INITIAL_BYTES);
  private length = 0;
  private readonly continuity = new Map<number, number>();

  /** Bytes written so far. */
  get size(): number {
    return this.length;
  }

  /** The packets written; the writer starts a new segment (continuity counters go on). */
  take(): Buffer {
    const bytes = this.data.subarray(0, this.length);
    // Not copied: the next segment gets a buffer of this one's size, so room a far larger segment needed is not kept.
    this.data = Buffer.allocUnsafe(Math.max(INITIAL_BYTES, this.length));
    this.length = 0;
    return bytes;
  }

  /** The PAT and the PMT of the program, its PCR on `pcrPid`: a segment's first two packets. */
  writeTables(streams: readonly ElementaryStream[], pcrPid: number): void {
    this.writeSection(this.packet(PAT_PID, true), patSection());
    this.writeSection(this.packet(PMT_PID, true), pmtSection(streams, pcrPid));
  }

  /** Writes the segment's PMT again, in place: a track that came before anything of it was written joins the segment. */
  rewriteProgram(streams: readonly ElementaryStream[], pcrPid: number): void {
    this.writeSection(PACKET_SIZE, pmtSection(streams, pcrPid));
  }

  writePes(pes: Pes): void {
    let remaining = pes.payload.reduce((sum, piece) => sum + piece.length, 0);
    const header = pesHeader(pes, remaining);
    const pieces = [header, ...pes.payload];
    remaining += header.length;
    let piece = 0;
    let pieceOffset = 0;
    let first = true;
    while (remaining > 0) {
      const at = this.packet(pes.pid, first);
      const adaptation = first ? adaptationFields(pes) : undefined;
      // Header, then the adaptation field (its length byte, and a flags byte when it has more than that), then payload.
      let fieldLength = adaptation ? 1 + adaptation.length : 0;
      const room = PACKET_SIZE - HEADER_SIZE - fieldLength;
      if (remaining < room) fieldLength += room - remaining;
      let pos = at + HEADER_SIZE;
      if (fieldLength > 0) {
        this.data[at + 3]! |= 0x20;
        pos = this.writeAdaptation(pos, fieldLength, adaptation);
      }
      const end = at + PACKET_SIZE;
      while (pos < end) {
        const source = pieces[piece]!;
        const copied = source.copy(this.data, pos, pieceOffset, Math.min(source.length, pieceOffset + end - pos));
        pos += copied;
        pieceOffset += copied;
        remaining -= copied;
        if (pieceOffset === source.length) {
          piece++;
          pieceOffset = 0;
        }
      }
      first = false;
    }
  }

  private writeSection(at: number, section: Buffer): void {
    // pointer_field 0, the section, 0xff after it (a section's own stuffing, not an adaptation field).
    this.data[at + HEADER_SIZE] = 0;
    section.copy(this.data, at + HEADER_SIZE + 1);
    this.data.fill(0xff, at + HEADER_SIZE + 1 + section.length, at + PACKET_SIZE);
  }

  /** Starts a packet with payload on `pid`; returns its offset. */
  private packet(pid: number, unitStart: boolean): number {
    if (this.length + PACKET_SIZE > this.data.length) {
      const grown = Buffer.allocUnsafe(this.data.length * 2);
      this.data.copy(grown, 0, 0, this.length);
      this.data = grown;
    }
    const at = this.length;
    const counter = this.continuity.get(pid) ?? 0;
    this.continuity.set(pid, (counter + 1) & 0x0f);
    this.data[at] = SYNC_BYTE;
    this.data[at + 1] = (unitStart ? 0x40 : 0) | (pid >> 8);
    this.data[at + 2] = pid & 0xff;
    this.data[at + 3] = 0x10 | counter; // payload present
    this.length += PACKET_SIZE;
    return at;
  }

  /** An adaptation field of `fieldLength` bytes (its length byte included) at `pos`: flags and PCR, then stuffing. */
  private writeAdaptation(pos: number, fieldLength: number, adaptation: Buffer | undefined): number {
    const end = pos + fieldLength;
    this.data[pos++] = fieldLength - 1;
    if (fieldLength === 1) return pos;
    if (adaptation) pos += adaptation.copy(this.data, pos);
    else this.data[pos++] = 0; // no flags
    this.data.fill(0xff, pos, end);
    return end;
  }
}

/** The adaptation field's flags byte and PCR for the first packet of a PES, when it needs either. */
function adaptationFields({ pcr, randomAccess }: Pes): Buffer | undefined {
  if (pcr === undefined && !randomAccess) return undefined;
  const fields = Buffer.alloc(pcr === undefined ? 1 : 7);
  fields[0] = (randomAccess ? 0x40 : 0) | (pcr === undefined ? 0 : 0x10);
  if (pcr !== undefined) {
    const base = pcr % TIMESTAMP_WRAP;
    fields.writeUInt32BE(Math.floor(base / 2), 1);
    fields[5] = ((base % 2) << 7) | 0x7e; // the last base bit, 6 reserved bits, the extension's top bit (0)
    fields[6] = 0;
  }
  return fields;
}

/** PES header with PTS (and DTS when it differs); the length is 0 (unbounded) for video that overflows 16 bits. */
function pesHeader({ streamId, pts, dts }: Pes, payloadLength: number): Buffer {
  const withDts = dts !== pts;
  const header = Buffer.alloc(withDts ? 19 : 14);
  header.writeUIntBE(0x000001, 0, 3);
  header[3] = streamId;
  const length = header.length - 6 + payloadLength;
  header.writeUInt16BE(length > 0xffff ? 0 : length, 4);
  header[6] = 0x84; // '10' marker, data_alignment_indicator
  header[7] = withDts ? 0xc0 : 0x80;
  header[8] = header.length - 9;
  writeTimestamp(header, 9, withDts ? 0x3 : 0x2, pts);
  if (withDts) writeTimestamp(header, 14, 0x1, dts);
  return header;
}

/** A 33-bit PTS or DTS in its 5 bytes, behind the 4-bit prefix and with marker bits. */
function writeTimestamp(out: Buffer, at: number, prefix: number, time: number): void {
  const t = ((time % TIMESTAMP_WRAP) + TIMESTAMP_WRAP) % TIMESTAMP_WRAP;
  const high = Math.floor(t / 2 ** 30); // bits 32..30
  const low = t % 2 ** 30;
  out[at] = (prefix << 4) | (high << 1) | 1;
  out.writeUInt16BE(((low >>> 15) << 1) | 1, at + 1);
  out.writeUInt16BE(((low & 0x7fff) << 1) | 1, at + 3);
}

function patSection(): Buffer {
  const program = Buffer.alloc(4);
  program.writeUInt16BE(PROGRAM_NUMBER, 0);
  program.writeUInt16BE(0xe000 | PMT_PID, 2);
  return section(0x00, 1, program);
}

function pmtSection(streams: readonly ElementaryStream[], pcrPid: number): Buffer {
  const body = Buffer.alloc(4 + streams.length * 5);
  body.writeUInt16BE(0xe000 | pcrPid, 0);
  body.writeUInt16BE(0xf000, 2); // program_info_length 0
  streams.forEach(({ pid, type }, i) => {
    body[4 + i * 5] = type;
    body.writeUInt16BE(0xe000 | pid, 5 + i * 5);
    body.writeUInt16BE(0xf000, 7 + i * 5); // ES_info_length 0
  });
  return section(0x02, PROGRAM_NUMBER, body);
}

/** A long-form PSI section (version 0, current, section 0 of 0) with its CRC. */
function section(tableId: number, idExtension: number, body: Buffer): Buffer {
  const out = Buffer.alloc(8 + body.length + 4);
  out[0] = tableId;
  out.writeUInt16BE(0xb000 | (out.length - 3), 1); // section_syntax_indicator, '0', reserved, section_length
  out.writeUInt16BE(idExtension, 3);
  out[5] = 0xc1; // reserved, version 0, current_next_indicator
  out[6] = 0;
  out[7] = 0;
  body.copy(out, 8);
  out.writeUInt32BE(crc32Mpeg(out.subarray(0, out.length - 4)), out.length - 4);
  return out;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n << 24;
  for (let k = 0; k < 8; k++) c = c & 0x8000_0000 ? (c << 1) ^ 0x04c1_1db7 : c << 1;
  return c >>> 0;
});

/** CRC-32/MPEG-2: polynomial 0x04C11DB7, not reflected, no final xor. */
export function crc32Mpeg(bytes: Buffer): number {
  let crc = 0xffff_ffff;
  for (const byte of bytes) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  return crc;
}
