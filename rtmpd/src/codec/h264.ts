import { BitReader, readNalLength } from './bits.ts';
import { MediaParseError } from './errors.ts';
import { declaredFps } from './frame-rate.ts';
import { skipVuiPictureInfo } from './vui.ts';

/** AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1). Buffers are subarrays of the input. */
export interface AvcConfig {
  profileIdc: number;
  profileCompatibility: number;
  levelIdc: number;
  /** Bytes in each NAL unit length prefix of coded frames (1, 2 or 4). */
  nalLengthSize: number;
  sps: Buffer[];
  pps: Buffer[];
}

export interface H264SpsInfo {
  /** e.g. 'High', 'Constrained Baseline' (ffprobe's names). */
  profile: string;
  profileIdc: number;
  /** e.g. '4.0', '3.1', '1b'. */
  level: string;
  levelIdc: number;
  chromaFormatIdc: number;
  bitDepth: number;
  width: number;
  height: number;
  /** From VUI timing info when present (time_scale / (2 * num_units_in_tick), at most MAX_DECLARED_FPS). */
  fps?: number;
}

export function parseAvcDecoderConfig(data: Buffer): AvcConfig {
  if (data.length < 7) throw new MediaParseError(`avcC too short (${data.length} bytes)`);
  if (data[0] !== 1) throw new MediaParseError(`avcC configurationVersion ${data[0]} is not 1`);
  const lengthSizeMinusOne = data[4]! & 3;
  if (lengthSizeMinusOne === 2) throw new MediaParseError('avcC lengthSizeMinusOne 2 is invalid');
  const sps: Buffer[] = [];
  const pps: Buffer[] = [];
  let pos = 5;
  const numSps = data[pos++]! & 0x1f;
  pos = readParameterSets(data, pos, numSps, sps, 'SPS');
  if (pos >= data.length) throw new MediaParseError('avcC truncated before numOfPictureParameterSets');
  const numPps = data[pos++]!;
  readParameterSets(data, pos, numPps, pps, 'PPS');
  if (sps.length === 0) throw new MediaParseError('avcC has no SPS');
  return {
    profileIdc: data[1]!,
    profileCompatibility: data[2]!,
    levelIdc: data[3]!,
    nalLengthSize: lengthSizeMinusOne + 1,
    sps,
    pps,
  };
}

function readParameterSets(data: Buffer, pos: number, count: number, out: Buffer[], what: string): number {
  for (let i = 0; i < count; i++) {
    if (pos + 2 > data.length) throw new MediaParseError(`avcC truncated in ${what} length`);
    const len = data.readUInt16BE(pos);
    pos += 2;
    if (len === 0 || pos + len > data.length) throw new MediaParseError(`avcC ${what} length ${len} out of range`);
    out.push(data.subarray(pos, pos + len));
    pos += len;
  }
  return pos;
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function profileName(idc: number, constraints: number): string {
  switch (idc) {
    case 66:
      return constraints & 0x40 ? 'Constrained Baseline' : 'Baseline';
    case 77:
      return 'Main';
    case 88:
      return 'Extended';
    case 100:
      return 'High';
    case 110:
      return constraints & 0x10 ? 'High 10 Intra' : 'High 10';
    case 122:
      return constraints & 0x10 ? 'High 4:2:2 Intra' : 'High 4:2:2';
    case 244:
      return constraints & 0x10 ? 'High 4:4:4 Intra' : 'High 4:4:4 Predictive';
    case 44:
      return 'CAVLC 4:4:4';
    default:
      return `Profile ${idc}`;
  }
}

function levelName(idc: number, constraints: number, profileIdc: number): string {
  if (idc === 9 || (idc === 11 && constraints & 0x10 && (profileIdc === 66 || profileIdc === 77 || profileIdc === 88))) {
    return '1b';
  }
  return `${Math.floor(idc / 10)}.${idc % 10}`;
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      next = (last + r.se() + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

/** Parses an H.264 sequence parameter set NAL unit (including its 1-byte NAL header). */
export function parseH264Sps(sps: Buffer): H264SpsInfo {
  if (sps.length < 4) throw new MediaParseError(`H.264 SPS too short (${sps.length} bytes)`);
  if ((sps[0]! & 0x1f) !== 7) throw new MediaParseError(`NAL type ${sps[0]! & 0x1f} is not an SPS`);
  const r = new BitReader(sps, 1);
  const profileIdc = r.u(8);
  const constraints = r.u(8);
  const levelIdc = r.u(8);
  r.ue(); // seq_parameter_set_id
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepth = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc > 3) throw new MediaParseError(`H.264 chroma_format_idc ${chromaFormatIdc} invalid`);
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    bitDepth = r.ue() + 8;
    r.ue(); // bit_depth_chroma_minus8
    r.bit(); // qpprime_y_zero_transform_bypass_flag
    if (r.flag()) {
      const lists = chromaFormatIdc === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) {
        if (r.flag()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    r.bit(); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const cycle = r.ue();
    if (cycle > 255) throw new MediaParseError(`H.264 num_ref_frames_in_pic_order_cnt_cycle ${cycle} invalid`);
    for (let i = 0; i < cycle; i++) r.se();
  } else if (pocType !== 2) {
    throw new MediaParseError(`H.264 pic_order_cnt_type ${pocType} invalid`);
  }
  r.ue(); // max_num_ref_frames
  r.bit(); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.bit();
  if (!frameMbsOnly) r.bit(); // mb_adaptive_frame_field_flag
  r.bit(); // direct_8x8_inference_flag
  let cropLeft = 0;
  let cropRight = 0;
  let cropTop = 0;
  let cropBottom = 0;
  if (r.flag()) {
    cropLeft = r.ue();
    cropRight = r.ue();
    cropTop = r.ue();
    cropBottom = r.ue();
  }
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
  const subHeightC = chromaArrayType === 1 ? 2 : 1;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
  const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (2 - frameMbsOnly);
  const width = widthMbs * 16 - cropUnitX * (cropLeft + cropRight);
  const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropUnitY * (cropTop + cropBottom);
  if (width <= 0 || height <= 0) throw new MediaParseError(`H.264 SPS cropping leaves ${width}x${height}`);

  const info: H264SpsInfo = {
    profile: profileName(profileIdc, constraints),
    profileIdc,
    level: levelName(levelIdc, constraints, profileIdc),
    levelIdc,
    chromaFormatIdc,
    bitDepth,
    width,
    height,
  };
  if (r.flag()) {
    const fps = vuiFps(r);
    if (fps !== undefined) info.fps = fps;
  }
  return info;
}

function vuiFps(r: BitReader): number | undefined {
  skipVuiPictureInfo(r);
  if (!r.flag()) return undefined; // timing_info_present_flag
  const numUnitsInTick = r.u(32);
  const timeScale = r.u(32);
  return declaredFps(timeScale, 2 * numUnitsInTick);
}

/**
 * True when the access unit (length-prefixed NAL units, as in FLV/MP4, from
 * `start` to the end of `frame`) holds an IDR slice (NAL type 5). Stops at the
 * first IDR; throws on a length that runs past the end of the frame.
 */
export function h264HasIdr(frame: Buffer, nalLengthSize: number, start = 0): boolean {
  if (nalLengthSize < 1 || nalLengthSize > 4) throw new MediaParseError(`NAL length size ${nalLengthSize} invalid`);
  const end = frame.length;
  let pos = start;
  while (pos < end) {
    if (pos + nalLengthSize > end) throw new MediaParseError('H.264 frame truncated in NAL length');
    const len = readNalLength(frame, pos, nalLengthSize);
    pos += nalLengthSize;
    if (len > end - pos) throw new MediaParseError(`H.264 NAL length ${len} exceeds frame (${end - pos} left)`);
    if (len > 0 && (frame[pos]! & 0x1f) === 5) return true;
    pos += len;
  }
  return false;
}
