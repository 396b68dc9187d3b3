import { parseAv1CodecConfig } from './av1.ts';
import { MediaParseError } from './errors.ts';
import { parseAvcDecoderConfig } from './h264.ts';
import { parseHevcDecoderConfig } from './hevc.ts';

const START_CODE = Buffer.from([0, 0, 0, 1]);

/**
 * Builds an Annex-B elementary stream for one keyframe (parameter sets from the
 * decoder configuration record, then the frame's NAL units, each behind a
 * 00 00 00 01 start code) that ffmpeg can decode on its own. Copies; meant for
 * snapshots, not the per-packet path.
 */
export function keyframeToAnnexB(codec: 'h264' | 'hevc', config: Buffer, frame: Buffer): Buffer {
  let paramSets: Buffer[];
  let nalLengthSize: number;
  if (codec === 'h264') {
    const avc = parseAvcDecoderConfig(config);
    paramSets = [...avc.sps, ...avc.pps];
    nalLengthSize = avc.nalLengthSize;
  } else {
    const hevc = parseHevcDecoderConfig(config);
    paramSets = [...hevc.vps, ...hevc.sps, ...hevc.pps];
    nalLengthSize = hevc.nalLengthSize;
  }
  const parts: Buffer[] = [];
  for (const ps of paramSets) parts.push(START_CODE, ps);
  let pos = 0;
  while (pos < frame.length) {
    if (pos + nalLengthSize > frame.length) throw new MediaParseError('frame truncated in NAL length');
    const len = frame.readUIntBE(pos, nalLengthSize);
    pos += nalLengthSize;
    if (len > frame.length - pos) throw new MediaParseError(`NAL length ${len} exceeds frame`);
    if (len > 0) parts.push(START_CODE, frame.subarray(pos, pos + len));
    pos += len;
  }
  return Buffer.concat(parts);
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
