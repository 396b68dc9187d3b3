// AAC in MPEG-TS travels as ADTS (ISO/IEC 13818-7 6.2): each raw frame
// behind a 7-byte header that repeats what the AudioSpecificConfig says, in
// fewer bits. What those bits cannot say, such a stream cannot carry in TS.
import { BitReader } from '../codec/bits.ts';
import { MediaParseError } from '../codec/errors.ts';

const AOT_SBR = 5;
const AOT_PS = 29;
const EXPLICIT_RATE = 15;
const HEADER_SIZE = 7;
/** frame_length is 13 bits, the header included. */
const MAX_FRAME_BYTES = 0x1fff - HEADER_SIZE;

/** The fields of an ADTS header that every frame of a config shares. */
export interface AdtsConfig {
  /** profile_ObjectType: the core's audio object type less one (Main 0, LC 1, SSR 2, LTP 3). */
  profile: number;
  samplingFrequencyIndex: number;
  channelConfiguration: number;
}

/**
 * The ADTS fields of an AudioSpecificConfig, or why ADTS cannot say it: a
 * core other than AAC Main, LC, SSR or LTP (2 bits of profile), an explicit
 * sample rate (no index for it), channels in a program config element
 * (channelConfiguration 0 needs the element in every frame's data, which
 * players do not read), or 960-sample frames (ADTS has no flag for them).
 * HE-AAC's SBR and PS, signalled explicitly, leave as its LC core: decoders
 * find them in the frames, as they do in any ADTS stream.
 */
export function adtsConfig(asc: Buffer): AdtsConfig | string {
  try {
    const r = new BitReader(asc, 0, asc.length, false);
    let type = objectType(r);
    const rateIndex = r.u(4);
    if (rateIndex === EXPLICIT_RATE) return 'an explicit sample rate';
    const channelConfiguration = r.u(4);
    if (type === AOT_SBR || type === AOT_PS) {
      if (r.u(4) === EXPLICIT_RATE) r.u(24); // extensionSamplingFrequency: the core keeps rateIndex
      type = objectType(r);
    }
    if (type < 1 || type > 4) return `audio object type ${type} (ADTS carries AAC Main, LC, SSR and LTP)`;
    if (channelConfiguration === 0) return 'channels in a program config element';
    if (channelConfiguration > 7) return `channel configuration ${channelConfiguration}`;
    if (r.flag()) return '960-sample frames';
    return { profile: type - 1, samplingFrequencyIndex: rateIndex, channelConfiguration };
  } catch (error) {
    if (error instanceof MediaParseError) return 'an AudioSpecificConfig cut short';
    throw error;
  }
}

function objectType(r: BitReader): number {
  const type = r.u(5);
  return type === 31 ? 32 + r.u(6) : type;
}

/** The 7-byte header (no CRC) of a raw frame of `frameBytes`; undefined for a frame longer than its 13-bit length says. */
export function adtsHeader({ profile, samplingFrequencyIndex, channelConfiguration }: AdtsConfig, frameBytes: number): Buffer | undefined {
  if (frameBytes > MAX_FRAME_BYTES) return undefined;
  const length = frameBytes + HEADER_SIZE;
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  header[0] = 0xff;
  header[1] = 0xf1; // sync, MPEG-4, layer 0, protection_absent
  header[2] = (profile << 6) | (samplingFrequencyIndex << 2) | (channelConfiguration >> 2);
  header[3] = ((channelConfiguration & 3) << 6) | (length >> 11);
  header[4] = (length >> 3) & 0xff;
  header[5] = ((length & 7) << 5) | 0x1f; // buffer fullness 0x7ff: variable rate
  header[6] = 0xfc; // ...and one raw data block
  return header;
}
