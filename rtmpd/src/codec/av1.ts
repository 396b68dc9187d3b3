import { BitReader } from './bits.ts';
import { MediaParseError } from './errors.ts';
import { declaredFps } from './frame-rate.ts';

/** AV1CodecConfigurationRecord (av1C) plus what its sequence header OBU says. */
export interface Av1Config {
  /** seq_profile: 0 Main, 1 High, 2 Professional. */
  seqProfile: number;
  profile: string;
  seqLevelIdx: number;
  /** e.g. '4.0' (2 + (idx >> 2)).(idx & 3); '31' (max) is reported as 'max'. */
  level: string;
  tier: 'Main' | 'High';
  bitDepth: number;
  monochrome: boolean;
  /** The configOBUs (subarray), usually one sequence header OBU. */
  configObus: Buffer;
  width?: number;
  height?: number;
  fps?: number;
}

const OBU_SEQUENCE_HEADER = 1;
const OBU_FRAME_HEADER = 3;
const OBU_FRAME = 6;
const PROFILES = ['Main', 'High', 'Professional'];
/** num_ticks_per_picture_minus_1 is 0 to 2^32 - 2 (6.4.2). */
const MAX_TICKS_PER_PICTURE = 2 ** 32 - 1;

export function parseAv1CodecConfig(data: Buffer): Av1Config {
  if (data.length < 4) throw new MediaParseError(`av1C too short (${data.length} bytes)`);
  if (data[0] !== 0x81) throw new MediaParseError(`av1C marker/version byte 0x${data[0]!.toString(16)} is not 0x81`);
  const seqProfile = data[1]! >> 5;
  const seqLevelIdx = data[1]! & 0x1f;
  const b2 = data[2]!;
  const highBitdepth = (b2 & 0x40) !== 0;
  const twelveBit = (b2 & 0x20) !== 0;
  const config: Av1Config = {
    seqProfile,
    profile: PROFILES[seqProfile] ?? `Profile ${seqProfile}`,
    seqLevelIdx,
    level: seqLevelIdx === 31 ? 'max' : `${2 + (seqLevelIdx >> 2)}.${seqLevelIdx & 3}`,
    tier: b2 & 0x80 ? 'High' : 'Main',
    bitDepth: seqProfile === 2 && highBitdepth ? (twelveBit ? 12 : 10) : highBitdepth ? 10 : 8,
    monochrome: (b2 & 0x10) !== 0,
    configObus: data.subarray(4),
  };
  forEachObu(config.configObus, (type, start, end) => {
    if (type !== OBU_SEQUENCE_HEADER) return false;
    const seq = parseSequenceHeader(config.configObus, start, end);
    config.width = seq.width;
    config.height = seq.height;
    if (seq.fps !== undefined) config.fps = seq.fps;
    return true;
  });
  return config;
}

/**
 * Walks the OBUs of a low-overhead bitstream (obu_has_size_field set, as in
 * MP4/FLV). `visit` gets the OBU type and its payload range; returning true stops.
 */
function forEachObu(data: Buffer, visit: (type: number, start: number, end: number) => boolean): void {
  let pos = 0;
  while (pos < data.length) {
    const header = data[pos]!;
    if (header & 0x80) throw new MediaParseError('AV1 OBU forbidden bit set');
    const type = (header >> 3) & 0xf;
    const hasExtension = (header & 4) !== 0;
    const hasSize = (header & 2) !== 0;
    pos += hasExtension ? 2 : 1;
    let size: number;
    if (hasSize) {
      size = 0;
      let i = 0;
      for (; ; i++) {
        if (i === 8) throw new MediaParseError('AV1 leb128 too long');
        if (pos >= data.length) throw new MediaParseError('AV1 OBU truncated in size');
        const b = data[pos++]!;
        size += (b & 0x7f) * 2 ** (7 * i);
        if (!(b & 0x80)) break;
      }
    } else {
      size = data.length - pos;
    }
    if (pos > data.length || size > data.length - pos) throw new MediaParseError(`AV1 OBU size ${size} exceeds data`);
    if (visit(type, pos, pos + size)) return;
    pos += size;
  }
}

interface SequenceHeader {
  reducedStillPicture: boolean;
  width: number;
  height: number;
  fps?: number;
}

function parseSequenceHeader(data: Buffer, start: number, end: number): SequenceHeader {
  const r = new BitReader(data, start, end, false);
  r.skip(3); // seq_profile
  r.bit(); // still_picture
  const reducedStillPicture = r.flag();
  let fps: number | undefined;
  if (reducedStillPicture) {
    r.skip(5); // seq_level_idx[0]
  } else {
    const timingInfoPresent = r.flag();
    let decoderModelInfoPresent = false;
    let bufferDelayLength = 0;
    if (timingInfoPresent) {
      const numUnitsInDisplayTick = r.u(32);
      const timeScale = r.u(32);
      const ticksPerPicture = r.flag() ? r.uvlc() + 1 : 1; // equal_picture_interval: num_ticks_per_picture_minus_1
      // uvlc's 32-zero escape (2^32 - 1) is outside num_ticks_per_picture_minus_1's range: no rate.
      if (ticksPerPicture <= MAX_TICKS_PER_PICTURE) fps = declaredFps(timeScale, numUnitsInDisplayTick * ticksPerPicture);
      decoderModelInfoPresent = r.flag();
      if (decoderModelInfoPresent) {
        bufferDelayLength = r.u(5) + 1;
        r.skip(32 + 5 + 5); // num_units_in_decoding_tick, buffer_removal_time_length, frame_presentation_time_length
      }
    }
    const initialDisplayDelayPresent = r.flag();
    const operatingPoints = r.u(5) + 1;
    for (let i = 0; i < operatingPoints; i++) {
      r.skip(12); // operating_point_idc
      if (r.u(5) > 7) r.bit(); // seq_level_idx → seq_tier
      if (decoderModelInfoPresent && r.flag()) r.skip(2 * bufferDelayLength + 1);
      if (initialDisplayDelayPresent && r.flag()) r.skip(4);
    }
  }
  const widthBits = r.u(4) + 1;
  const heightBits = r.u(4) + 1;
  const width = r.u(widthBits) + 1;
  const height = r.u(heightBits) + 1;
  const seq: SequenceHeader = { reducedStillPicture, width, height };
  if (fps !== undefined) seq.fps = fps;
  return seq;
}

/**
 * Best-effort keyframe test for one AV1 temporal unit: true when it carries a
 * sequence header OBU or a frame header whose frame_type is KEY_FRAME.
 */
export function av1IsKeyframe(frame: Buffer): boolean {
  let key = false;
  forEachObu(frame, (type, start, end) => {
    if (type === OBU_SEQUENCE_HEADER) {
      key = true;
      return true;
    }
    if (type === OBU_FRAME_HEADER || type === OBU_FRAME) {
      if (end - start < 1) throw new MediaParseError('AV1 frame header empty');
      const b = frame[start]!;
      // show_existing_frame(1) then frame_type(2); assumes reduced_still_picture_header = 0.
      key = (b & 0x80) === 0 && (b & 0x60) === 0;
      return true;
    }
    return false;
  });
  return key;
}
