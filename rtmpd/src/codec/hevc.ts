import { BitReader, readNalLength } from './bits.ts';
import { MediaParseError } from './errors.ts';
import { declaredFps } from './frame-rate.ts';
import { skipVuiPictureInfo } from './vui.ts';

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
  /** From the VPS timing info, else from the first SPS's VUI (x265 writes it there only), when present. */
  fps?: number;
}

interface HevcSpsInfo {
  profileIdc: number;
  levelIdc: number;
  chromaFormatIdc: number;
  width: number;
  height: number;
  fps?: number;
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
  const spsInfo = firstSps && parseHevcSps(firstSps);
  if (spsInfo) {
    config.width = spsInfo.width;
    config.height = spsInfo.height;
  }
  const firstVps = vps[0];
  const fps = (firstVps && unlessMalformed(() => parseHevcVpsFps(firstVps))) ?? spsInfo?.fps;
  if (fps !== undefined) config.fps = fps;
  return config;
}

/**
 * The frame rate `read` finds, or undefined when the parameter set ends early or
 * breaks a limit of its syntax: the frame rate is for display, and a parameter
 * set rtmpd cannot read to its timing info does not make the stream unplayable.
 */
function unlessMalformed(read: () => number | undefined): number | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof MediaParseError) return undefined;
    throw err;
  }
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

/**
 * Parses an HEVC SPS NAL unit (including its 2-byte NAL header): the picture
 * size, or a MediaParseError, and the frame rate from the VUI when the SPS can
 * be read that far.
 */
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
  const info: HevcSpsInfo = { profileIdc, levelIdc, chromaFormatIdc, width, height };
  const fps = unlessMalformed(() => spsVuiFps(r, maxSubLayersMinus1));
  if (fps !== undefined) info.fps = fps;
  return info;
}

/** Reads the rest of the SPS (H.265 7.3.2.2.1) from bit_depth_luma_minus8 up to the VUI timing info. */
function spsVuiFps(r: BitReader, maxSubLayersMinus1: number): number | undefined {
  r.ue(); // bit_depth_luma_minus8
  r.ue(); // bit_depth_chroma_minus8
  const log2MaxPocLsbMinus4 = r.ue();
  if (log2MaxPocLsbMinus4 > 12) throw new MediaParseError(`HEVC log2_max_pic_order_cnt_lsb_minus4 ${log2MaxPocLsbMinus4} invalid`);
  skipSubLayerOrderingInfo(r, maxSubLayersMinus1);
  // log2_min_luma_coding_block_size_minus3, log2_diff_max_min_luma_coding_block_size,
  // log2_min_luma_transform_block_size_minus2, log2_diff_max_min_luma_transform_block_size,
  // max_transform_hierarchy_depth_inter, max_transform_hierarchy_depth_intra
  for (let i = 0; i < 6; i++) r.ue();
  if (r.flag() && r.flag()) skipScalingListData(r); // scaling_list_enabled_flag, sps_scaling_list_data_present_flag
  r.skip(2); // amp_enabled_flag, sample_adaptive_offset_enabled_flag
  if (r.flag()) {
    // pcm_enabled_flag
    r.skip(8); // pcm_sample_bit_depth_luma_minus1, pcm_sample_bit_depth_chroma_minus1
    r.ue(); // log2_min_pcm_luma_coding_block_size_minus3
    r.ue(); // log2_diff_max_min_pcm_luma_coding_block_size
    r.bit(); // pcm_loop_filter_disabled_flag
  }
  skipShortTermRefPicSets(r);
  if (r.flag()) {
    // long_term_ref_pics_present_flag
    const count = r.ue();
    if (count > 32) throw new MediaParseError(`HEVC num_long_term_ref_pics_sps ${count} invalid`);
    r.skip(count * (log2MaxPocLsbMinus4 + 4 + 1)); // lt_ref_pic_poc_lsb_sps, used_by_curr_pic_lt_sps_flag
  }
  r.skip(2); // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
  if (!r.flag()) return undefined; // vui_parameters_present_flag
  skipVuiPictureInfo(r);
  r.skip(3); // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
  if (r.flag()) {
    // default_display_window_flag: left, right, top, bottom offsets
    for (let i = 0; i < 4; i++) r.ue();
  }
  if (!r.flag()) return undefined; // vui_timing_info_present_flag
  const numUnitsInTick = r.u(32);
  const timeScale = r.u(32);
  return declaredFps(timeScale, numUnitsInTick);
}

/** The max_dec_pic_buffering, max_num_reorder_pics and max_latency_increase of each sub-layer (VPS and SPS alike). */
function skipSubLayerOrderingInfo(r: BitReader, maxSubLayersMinus1: number): void {
  const forEverySubLayer = r.flag();
  for (let i = forEverySubLayer ? 0 : maxSubLayersMinus1; i <= maxSubLayersMinus1; i++) {
    r.ue();
    r.ue();
    r.ue();
  }
}

/** scaling_list_data() (7.3.4): 6 matrices per size, 2 for 32x32, each predicted or coded. */
function skipScalingListData(r: BitReader): void {
  for (let sizeId = 0; sizeId < 4; sizeId++) {
    const coefficients = Math.min(64, 1 << (4 + (sizeId << 1)));
    for (let matrixId = 0; matrixId < 6; matrixId += sizeId === 3 ? 3 : 1) {
      if (!r.flag()) {
        r.ue(); // scaling_list_pred_mode_flag 0: scaling_list_pred_matrix_id_delta
        continue;
      }
      if (sizeId > 1) r.se(); // scaling_list_dc_coef_minus8
      for (let i = 0; i < coefficients; i++) r.se(); // scaling_list_delta_coef
    }
  }
}

/**
 * A short-term reference picture set lists at most 15 pictures (MaxDpbSize - 1,
 * A.4.2); like ffmpeg, this accepts 15 on each side of the current picture and
 * reads a set with more no further.
 */
const MAX_REF_PICTURES_PER_SIDE = 15;

/** A short-term reference picture set: the POC distances of its pictures before and after the current one. */
interface ShortTermRefPicSet {
  negative: number[];
  positive: number[];
}

/**
 * num_short_term_ref_pic_sets and each st_ref_pic_set() (7.3.7). A set
 * predicted from the previous one (inter_ref_pic_set_prediction_flag) codes a
 * flag or two per picture of that set, so the pictures of each set are derived
 * as the decoder does (7.4.8).
 */
function skipShortTermRefPicSets(r: BitReader): void {
  const count = r.ue();
  if (count > 64) throw new MediaParseError(`HEVC num_short_term_ref_pic_sets ${count} invalid`);
  let previous: ShortTermRefPicSet = { negative: [], positive: [] };
  for (let i = 0; i < count; i++) {
    previous = i > 0 && r.flag() ? predictedRefPicSet(r, previous) : codedRefPicSet(r);
  }
}

/** st_ref_pic_set() with its pictures coded: counts, then each distance to the previous picture. */
function codedRefPicSet(r: BitReader): ShortTermRefPicSet {
  const negativeCount = r.ue(); // num_negative_pics
  const positiveCount = r.ue(); // num_positive_pics
  checkRefPicSetSize(negativeCount, positiveCount);
  const distances = (count: number, sign: number): number[] => {
    const out: number[] = [];
    let poc = 0;
    for (let j = 0; j < count; j++) {
      poc += sign * (r.ue() + 1); // delta_poc_s0_minus1 / delta_poc_s1_minus1
      r.bit(); // used_by_curr_pic_s0_flag / used_by_curr_pic_s1_flag
      out.push(poc);
    }
    return out;
  };
  const negative = distances(negativeCount, -1);
  return { negative, positive: distances(positiveCount, 1) };
}

/**
 * st_ref_pic_set() predicted from `ref`: every picture of `ref` and `ref`'s
 * own picture, shifted by deltaRps, is kept when its use_delta_flag is set and
 * it does not land on the current picture (equations 7-61 and 7-62).
 */
function predictedRefPicSet(r: BitReader, ref: ShortTermRefPicSet): ShortTermRefPicSet {
  const sign = r.bit(); // delta_rps_sign
  const deltaRps = (sign ? -1 : 1) * (r.ue() + 1); // abs_delta_rps_minus1
  // One flag per picture of ref (negatives, then positives, then ref's own picture).
  const kept: boolean[] = [];
  for (let j = 0; j <= ref.negative.length + ref.positive.length; j++) {
    kept.push(r.flag() || r.flag()); // used_by_curr_pic_flag, else use_delta_flag
  }
  const shifted = (distances: number[], offset: number) => distances.flatMap((d, j) => (kept[offset + j] ? [d + deltaRps] : []));
  const fromNegative = shifted(ref.negative, 0);
  const fromPositive = shifted(ref.positive, ref.negative.length);
  const own = kept.at(-1) ? [deltaRps] : [];
  const negative = [...fromPositive.toReversed(), ...own, ...fromNegative].filter((poc) => poc < 0);
  const positive = [...fromNegative.toReversed(), ...own, ...fromPositive].filter((poc) => poc > 0);
  checkRefPicSetSize(negative.length, positive.length);
  return { negative, positive };
}

function checkRefPicSetSize(negative: number, positive: number): void {
  if (negative > MAX_REF_PICTURES_PER_SIDE || positive > MAX_REF_PICTURES_PER_SIDE) {
    throw new MediaParseError(`HEVC short-term reference set of ${negative} + ${positive} pictures invalid`);
  }
}

/** Frame rate from the VPS timing info, or undefined (x265 writes its timing in the SPS VUI only). */
function parseHevcVpsFps(nal: Buffer): number | undefined {
  if (nal.length < 3 || ((nal[0]! >> 1) & 0x3f) !== 32) return undefined;
  const r = new BitReader(nal, 2);
  r.skip(4 + 1 + 1 + 6); // vps id, base_layer_internal, base_layer_available, max_layers_minus1
  const maxSubLayersMinus1 = r.u(3);
  if (maxSubLayersMinus1 > 6) throw new MediaParseError(`HEVC vps_max_sub_layers_minus1 ${maxSubLayersMinus1} invalid`);
  r.skip(1 + 16); // temporal_id_nesting, reserved 0xffff
  profileTierLevel(r, maxSubLayersMinus1);
  skipSubLayerOrderingInfo(r, maxSubLayersMinus1);
  const maxLayerId = r.u(6);
  const numLayerSetsMinus1 = r.ue();
  if (numLayerSetsMinus1 > 1023) throw new MediaParseError('HEVC vps_num_layer_sets_minus1 out of range');
  r.skip(numLayerSetsMinus1 * (maxLayerId + 1));
  if (!r.flag()) return undefined; // vps_timing_info_present_flag
  const numUnitsInTick = r.u(32);
  const timeScale = r.u(32);
  return declaredFps(timeScale, numUnitsInTick);
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
