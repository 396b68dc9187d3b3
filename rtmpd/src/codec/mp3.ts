// MPEG audio frame headers (ISO/IEC 11172-3 2.4.1.3, 13818-3 2.4.2.3). MP3
// has no decoder config: each frame's header describes it, and FLV's own
// flags cannot say 48 kHz (ffmpeg sends a 48 kHz MP3 flagged 44 kHz).

export interface MpegAudioHeader {
  /** MPEG-1, MPEG-2 (half rates) or MPEG-2.5 (quarter rates). */
  version: 1 | 2 | 2.5;
  layer: 1 | 2 | 3;
  sampleRate: number;
  /** channel_mode: 0 stereo, 1 joint stereo, 2 dual channel, 3 single channel. */
  channelMode: number;
  channels: number;
}

const SAMPLE_RATES = [44_100, 48_000, 32_000];
/** By the header's 2-bit version field: 2.5, reserved, 2, 1. */
const VERSIONS = [2.5, undefined, 2, 1] as const;
const SINGLE_CHANNEL = 3;

/** The header a frame starts with, or undefined where it starts with none (no sync word, a reserved version, layer or rate). */
export function parseMpegAudioHeader(frame: Buffer): MpegAudioHeader | undefined {
  if (frame.length < 4 || frame[0] !== 0xff || frame[1]! >> 5 !== 7) return undefined;
  const version = VERSIONS[(frame[1]! >> 3) & 3];
  const layerBits = (frame[1]! >> 1) & 3;
  const rate = SAMPLE_RATES[(frame[2]! >> 2) & 3];
  if (version === undefined || layerBits === 0 || rate === undefined) return undefined;
  const channelMode = frame[3]! >> 6;
  return {
    version,
    layer: (4 - layerBits) as 1 | 2 | 3,
    sampleRate: version === 1 ? rate : version === 2 ? rate / 2 : rate / 4,
    channelMode,
    channels: channelMode === SINGLE_CHANNEL ? 1 : 2,
  };
}
