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

/** Sample rates by the header's 2-bit version field (2.5, reserved, 2, 1), then by its sampling_frequency (the fourth reserved). */
const SAMPLE_RATES = [[11_025, 12_000, 8_000], undefined, [22_050, 24_000, 16_000], [44_100, 48_000, 32_000]] as const;
/** By the header's 2-bit version field: 2.5, reserved, 2, 1. */
const VERSIONS = [2.5, undefined, 2, 1] as const;
const SINGLE_CHANNEL = 3;

/** The header a frame starts with, or undefined where it starts with none (no sync word, a reserved version, layer or rate). */
export function parseMpegAudioHeader(frame: Buffer): MpegAudioHeader | undefined {
  const sampleRate = mpegAudioSampleRate(frame);
  if (sampleRate === undefined) return undefined;
  return {
    version: VERSIONS[(frame[1]! >> 3) & 3]!,
    layer: mpegAudioLayer(frame),
    sampleRate,
    channelMode: mpegAudioChannelMode(frame),
    channels: mpegAudioChannels(frame),
  };
}

/**
 * The sample rate of the header a frame starts with, or undefined where it
 * starts with none. It allocates nothing, for the hub to compare every MP3
 * frame with its track (parseMpegAudioHeader makes an object).
 */
export function mpegAudioSampleRate(frame: Buffer, at = 0): number | undefined {
  if (frame.length < at + 4 || frame[at] !== 0xff || frame[at + 1]! >> 5 !== 7 || ((frame[at + 1]! >> 1) & 3) === 0) return undefined;
  return SAMPLE_RATES[(frame[at + 1]! >> 3) & 3]?.[(frame[at + 2]! >> 2) & 3];
}

/** The layer of the header a frame starts with (where mpegAudioSampleRate finds one; `at` where the frame starts in a message), read in place as the rate is. */
export const mpegAudioLayer = (frame: Buffer, at = 0): 1 | 2 | 3 => (4 - ((frame[at + 1]! >> 1) & 3)) as 1 | 2 | 3;

/** Its channel_mode, in place: 0 stereo, 1 joint stereo, 2 dual channel, 3 single channel. */
export const mpegAudioChannelMode = (frame: Buffer, at = 0): number => frame[at + 3]! >> 6;

/** Its channels, in place: 1 for single_channel, else 2. */
export const mpegAudioChannels = (frame: Buffer): number => (mpegAudioChannelMode(frame) === SINGLE_CHANNEL ? 1 : 2);

/**
 * Samples a frame lasts, by its header's version and layer (ISO/IEC 11172-3
 * 2.4.3.1, 13818-3 2.4.3.1): Layer I 384, Layer II 1152, Layer III 1152 at
 * MPEG-1 and 576 at MPEG-2 and 2.5 (one granule, not two).
 */
export const mpegAudioFrameSamples = ({ version, layer }: Pick<MpegAudioHeader, 'version' | 'layer'>): number =>
  layer === 1 ? 384 : layer === 2 || version === 1 ? 1152 : 576;

/** The version whose rates hold `sampleRate`: MPEG-1's are 32-48 kHz, MPEG-2's 16-24 kHz (half), MPEG-2.5's below (a quarter). */
export const mpegAudioVersion = (sampleRate: number): MpegAudioHeader['version'] =>
  sampleRate >= 32_000 ? 1 : sampleRate >= 16_000 ? 2 : 2.5;
