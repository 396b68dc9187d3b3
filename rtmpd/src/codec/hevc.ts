import { BitReader, readNalLength } from './bits.ts';
import { MediaParseError } from './errors.ts';

interface HevcNalArray {
  /** NAL unit type of the array (32 VPS, 33 SPS, 34 PPS, 39/40 SEI). */
  nalType: number;
  completeness: boolean;
  nalus: Buffer[];
}

/** HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) plus what the SPS says. */
export interface HevcConfig {
  profileSpace: number;
  /** 'Main' | 'High'. */
  tier: 'Main' | 'High';
  profileIdc: number;
  /** e.g. 'Main', 'Main 10'. */
  profile: string;
  levelIdc: number;
  /** level_idc / 30, e.g. '3.1', '4.0'. */
  level: string;
  chromaFormatIdc: number;
  bitDepth: number;
  nalLengthSize: number;
  arrays: HevcNalArray[];
  vps: Buffer[];
  sps: Buffer[];
  pps: Buffer[];
  /** From the first SPS (conformance window applied), when there is one. */
  width?: number;
  height?: number;
  /** From VPS timing info when present. */
  fps?: number;
}

interface HevcSpsInfo {
  profileIdc: number;
  levelIdc: number;
  chromaFormatIdc: number;
  width: number;
  height: number;
}

const HEVC_PROFILES: Record<number, string> = {
  1: 'Main',
  2: 'Main 10',
  3: 'Main Still Picture',
  4: 'Rext',
  5: 'High Throughput 4:4:4',
  6: 'Multiview Main',
  7: 'Scalable Main',
  8: '3D Main',
  9: 'Screen Extended',
};

function hevcProfileName(idc: number): string {
  return HEVC_PROFILES[idc] ?? `Profile ${idc}`;
}

function hevcLevelName(levelIdc: number): string {
  return `${Math.floor(levelIdc / 30)}.${Math.floor((levelIdc % 30) / 3)}`;
}

export function parseHevcDecoderConfig(data: Buffer): HevcConfig {
  if (data.length < 23) throw new MediaParseError(`hvcC too short (${data.length} bytes)`);
  if (data[0] !== 1) throw new MediaParseError(`hvcC configurationVersion ${data[0]} is not 1`);
  const b1 = data[1]!;
  const lengthSizeMinusOne = data[21]! & 3;
  if (lengthSizeMinusOne === 2) throw new MediaParseError('hvcC lengthSizeMinusOne 2 is invalid');
  const numArrays = data[22]!;
  const arrays: HevcNalArray[] = [];
  const vps: Buffer[] = [];
  const sps: Buffer[] = [];
  const pps: Buffer[] = [];
  let pos = 23;
  for (let i = 0; i < numArrays; i++) {
    if (pos + 3 > data.length) throw new MediaParseError('hvcC truncated in NAL array header');
    const nalType = data[pos]! & 0x3f;
    const completeness = (data[pos]! & 0x80) !== 0;
    const count = data.readUInt16BE(pos + 1);
    pos += 3;
    const nalus: Buffer[] = [];
    for (let j = 0; j < count; j++) {
      if (pos + 2 > data.length) throw new MediaParseError('hvcC truncated in NAL unit length');
      const len = data.readUInt16BE(pos);
      pos += 2;
      if (len < 2 || pos + len > data.length) throw new MediaParseError(`hvcC NAL unit length ${len} out of range`);
      const nal = data.subarray(pos, pos + len);
      pos += len;
      nalus.push(nal);
      if (nalType === 32) vps.push(nal);
      else if (nalType === 33) sps.push(nal);
      else if (nalType === 34) pps.push(nal);
    }
    arrays.push({ nalType, completeness, nalus });
  }
  const profileIdc = b1 & 0x1f;
  const levelIdc = data[12]!;
  const config: HevcConfig = {
    profileSpace: b1 >> 6,
    tier: b1 & 0x20 ? 'High' : 'Main',
    profileIdc,
    profile: hevcProfileName(profileIdc),
    levelIdc,
    level: hevcLevelName(levelIdc),
    chromaFormatIdc: data[16]! & 3,
    bitDepth: (data[17]! & 7) + 8,
    nalLengthSize: lengthSizeMinusOne + 1,
    arrays,
    vps,
    sps,
    pps,
  };
  const firstSps = sps[0];
  if (firstSps) {
    const info = parseHevcSps(firstSps);
    config.width = info.width;
    config.height = info.height;
  }
  const firstVps = vps[0];
  if (firstVps) {
    const fps = parseHevcVpsFps(firstVps);
    if (fps !== undefined) config.fps = fps;
  }
  return config;
}

/** profile_tier_level(1, maxSubLayersMinus1); returns general_profile_idc and general_level_idc. */
function profileTierLevel(r: BitReader, maxSubLayersMinus1: number): { profileIdc: number; levelIdc: number } {
  r.skip(3); // general_profile_space, general_tier_flag
  const profileIdc = r.u(5);
  r.skip(32 + 48); // compatibility flags, constraint flags
  const levelIdc = r.u(8);
  let profilePresent = 0;
  let levelPresent = 0;
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent |= r.bit() << i;
    levelPresent |= r.bit() << i;
  }
  if (maxSubLayersMinus1 > 0) r.skip(2 * (8 - maxSubLayersMinus1));
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent & (1 << i)) r.skip(88);
    if (levelPresent & (1 << i)) r.skip(8);
  }
  return { profileIdc, levelIdc };
}

/** Parses an HEVC SPS NAL unit (including its 2-byte NAL header) far enough for the picture size. */
function parseHevcSps(nal: Buffer): HevcSpsInfo {
  if (nal.length < 3) throw new MediaParseError(`HEVC SPS too short (${nal.length} bytes)`);
  if (((nal[0]! >> 1) & 0x3f) !== 33) throw new MediaParseError(`NAL type ${(nal[0]! >> 1) & 0x3f} is not an SPS`);
  const r = new BitReader(nal, 2);
  r.skip(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = r.u(3);
  if (maxSubLayersMinus1 > 6) throw new MediaParseError(`HEVC sps_max_sub_layers_minus1 ${maxSubLayersMinus1} invalid`);
  r.bit(); // sps_temporal_id_nesting_flag
  const { profileIdc, levelIdc } = profileTierLevel(r, maxSubLayersMinus1);
  r.ue(); // sps_seq_parameter_set_id
  const chromaFormatIdc = r.ue();
  if (chromaFormatIdc > 3) throw new MediaParseError(`HEVC chroma_format_idc ${chromaFormatIdc} invalid`);
  const separateColourPlane = chromaFormatIdc === 3 && r.flag();
  const picWidth = r.ue();
  const picHeight = r.ue();
  let width = picWidth;
  let height = picHeight;
  if (r.flag()) {
    const chroma = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidthC = chroma === 1 || chroma === 2 ? 2 : 1;
    const subHeightC = chroma === 1 ? 2 : 1;
    const left = r.ue();
    const right = r.ue();
    const top = r.ue();
    const bottom = r.ue();
    width -= subWidthC * (left + right);
    height -= subHeightC * (top + bottom);
  }
  if (width <= 0 || height <= 0) throw new MediaParseError(`HEVC SPS picture size ${width}x${height} invalid`);
  return { profileIdc, levelIdc, chromaFormatIdc, width, height };
}

/** Frame rate from the VPS timing info, or undefined (x265 writes its timing in the SPS VUI only, which is not read). */
function parseHevcVpsFps(nal: Buffer): number | undefined {
  if (nal.length < 3 || ((nal[0]! >> 1) & 0x3f) !== 32) return undefined;
  const r = new BitReader(nal, 2);
  r.skip(4 + 1 + 1 + 6); // vps id, base_layer_internal, base_layer_available, max_layers_minus1
  const maxSubLayersMinus1 = r.u(3);
  if (maxSubLayersMinus1 > 6) throw new MediaParseError(`HEVC vps_max_sub_layers_minus1 ${maxSubLayersMinus1} invalid`);
  r.skip(1 + 16); // temporal_id_nesting, reserved 0xffff
  profileTierLevel(r, maxSubLayersMinus1);
  const orderingAll = r.flag();
  for (let i = orderingAll ? 0 : maxSubLayersMinus1; i <= maxSubLayersMinus1; i++) {
    r.ue();
    r.ue();
    r.ue();
  }
  const maxLayerId = r.u(6);
  const numLayerSetsMinus1 = r.ue();
  if (numLayerSetsMinus1 > 1023) throw new MediaParseError('HEVC vps_num_layer_sets_minus1 out of range');
  r.skip(numLayerSetsMinus1 * (maxLayerId + 1));
  if (!r.flag()) return undefined; // vps_timing_info_present_flag
  const numUnitsInTick = r.u(32);
  const timeScale = r.u(32);
  if (numUnitsInTick === 0 || timeScale === 0) return undefined;
  return timeScale / numUnitsInTick;
}

/**
 * True when the access unit (length-prefixed NAL units, from `start` to the
 * end of `frame`) holds an IRAP picture (NAL types 16..23: BLA, IDR, CRA).
 * Throws on a length past the end.
 */
export function hevcHasIrap(frame: Buffer, nalLengthSize: number, start = 0): boolean {
  if (nalLengthSize < 1 || nalLengthSize > 4) throw new MediaParseError(`NAL length size ${nalLengthSize} invalid`);
  const end = frame.length;
  let pos = start;
  while (pos < end) {
    if (pos + nalLengthSize > end) throw new MediaParseError('HEVC frame truncated in NAL length');
    const len = readNalLength(frame, pos, nalLengthSize);
    pos += nalLengthSize;
    if (len > end - pos) throw new MediaParseError(`HEVC NAL length ${len} exceeds frame (${end - pos} left)`);
    if (len > 0) {
      const type = (frame[pos]! >> 1) & 0x3f;
      if (type >= 16 && type <= 23) return true;
    }
    pos += len;
  }
  return false;
}
