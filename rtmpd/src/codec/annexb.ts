import { parseAv1CodecConfig } from './av1.ts';
import { MediaParseError } from './errors.ts';
import { parseAvcDecoderConfig } from './h264.ts';
import { parseHevcDecoderConfig } from './hevc.ts';

const START_CODE = Buffer.from([0, 0, 0, 1]);

export type AnnexBCodec = 'h264' | 'hevc';

/** What an Annex-B stream needs from a decoder configuration record. */
export interface AnnexBConfig {
  /** Bytes in each NAL unit length prefix of the coded frames. */
  nalLengthSize: number;
  /** In the order a decoder reads them (VPS, SPS, PPS); views of the record. */
  parameterSets: Buffer[];
}

/** The record's Annex-B parts; throws MediaParseError when it does not parse. */
export function annexBConfig(codec: AnnexBCodec, config: Buffer): AnnexBConfig {
  if (codec === 'h264') {
    const { nalLengthSize, sps, pps } = parseAvcDecoderConfig(config);
    return { nalLengthSize, parameterSets: [...sps, ...pps] };
  }
  const { nalLengthSize, vps, sps, pps } = parseHevcDecoderConfig(config);
  return { nalLengthSize, parameterSets: [...vps, ...sps, ...pps] };
}

/** A NAL unit's type, from its first header byte. */
const nalUnitType: Record<AnnexBCodec, (firstByte: number) => number> = {
  h264: (byte) => byte & 0x1f,
  hevc: (byte) => (byte >> 1) & 0x3f,
};

export interface AnnexBFrameOptions {
  /** NAL units that go before the frame's (an access unit delimiter, parameter sets). */
  leading?: readonly Buffer[];
  /** The frame's NAL units of this type are left out (its own access unit delimiter, when `leading` has one). */
  omitNalType?: number;
}

/**
 * One length-prefixed (AVCC) frame's NAL units, after `leading`, each behind
 * a 00 00 00 01 start code: views of the frame, not copies. A string says why
 * the frame does not parse (a length runs past its end).
 */
export function frameToAnnexB(
  codec: AnnexBCodec,
  frame: Buffer,
  nalLengthSize: number,
  { leading = [], omitNalType }: AnnexBFrameOptions = {},
): Buffer[] | string {
  const pieces: Buffer[] = [];
  for (const nal of leading) pieces.push(START_CODE, nal);
  const nalType = nalUnitType[codec];
  let pos = 0;
  while (pos < frame.length) {
    if (pos + nalLengthSize > frame.length) return 'frame truncated in NAL length';
    const length = frame.readUIntBE(pos, nalLengthSize);
    pos += nalLengthSize;
    if (length > frame.length - pos) return `NAL length ${length} exceeds frame`;
    if (length > 0 && nalType(frame[pos]!) !== omitNalType) pieces.push(START_CODE, frame.subarray(pos, pos + length));
    pos += length;
  }
  return pieces;
}

/**
 * Builds an Annex-B elementary stream for one keyframe (parameter sets from the
 * decoder configuration record, then the frame's NAL units, each behind a
 * 00 00 00 01 start code) that ffmpeg can decode on its own. Copies; meant for
 * snapshots, not the per-packet path.
 */
export function keyframeToAnnexB(codec: AnnexBCodec, config: Buffer, frame: Buffer): Buffer {
  const { nalLengthSize, parameterSets } = annexBConfig(codec, config);
  const pieces = frameToAnnexB(codec, frame, nalLengthSize, { leading: parameterSets });
  if (typeof pieces === 'string') throw new MediaParseError(pieces);
  return Buffer.concat(pieces);
}

/**
 * Wraps one AV1 keyframe temporal unit in a single-frame IVF file (the
 * sequence header OBU from av1C is prepended when the frame lacks one), which
 * ffmpeg 5.1 (libdav1d/libaom) decodes.
 */
export function keyframeToIvf(config: Buffer, frame: Buffer): Buffer {
  const av1 = parseAv1CodecConfig(config);
  const hasSeqHeader = frame.length > 0 && ((frame[0]! >> 3) & 0xf) === 1;
  const prefix = hasSeqHeader ? Buffer.alloc(0) : av1.configObus;
  const frameSize = prefix.length + frame.length;
  const header = Buffer.alloc(32 + 12);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4); // version
  header.writeUInt16LE(32, 6); // header size
  header.write('AV01', 8, 'latin1');
  header.writeUInt16LE(av1.width ?? 0, 12);
  header.writeUInt16LE(av1.height ?? 0, 14);
  header.writeUInt32LE(1, 16); // time base denominator
  header.writeUInt32LE(1, 20); // time base numerator
  header.writeUInt32LE(1, 24); // frame count
  header.writeUInt32LE(frameSize, 32);
  // 8-byte little-endian timestamp 0 at offset 36 (already zero).
  return Buffer.concat([header, prefix, frame]);
}
