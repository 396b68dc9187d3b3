import { BitReader } from './bits.ts';
import { MediaParseError } from './errors.ts';

/** AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1). */
export interface AacConfig {
  /** Audio object type; 5 (SBR) / 29 (PS) when signalled explicitly. */
  objectType: number;
  /** 'LC', 'HE-AAC', 'HE-AACv2', 'Main', ... */
  profile: string;
  /** Output sample rate (the SBR extension rate for HE-AAC). */
  sampleRate: number;
  /** 0 when the channel layout is in a program config element. */
  channels: number;
  /** channelConfiguration as coded (0: a program config element): it decides a raw frame's syntactic elements. */
  channelConfiguration: number;
  /** Samples a frame lasts at sampleRate: the core's 1024, or 2048 where explicit SBR doubles the rate. */
  frameSamples: number;
}

const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
const CHANNELS = [0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8];

const PROFILES: Record<number, string> = {
  1: 'Main',
  2: 'LC',
  3: 'SSR',
  4: 'LTP',
  5: 'HE-AAC',
  6: 'Scalable',
  17: 'ER LC',
  19: 'ER LTP',
  23: 'LD',
  29: 'HE-AACv2',
  39: 'ELD',
  42: 'xHE-AAC',
};

function objectType(r: BitReader): number {
  const t = r.u(5);
  return t === 31 ? 32 + r.u(6) : t;
}

function sampleRate(r: BitReader): number {
  const index = r.u(4);
  if (index === 15) {
    const rate = r.u(24);
    if (rate === 0) throw new MediaParseError('AAC explicit sampling frequency is 0');
    return rate;
  }
  const rate = SAMPLE_RATES[index];
  if (rate === undefined) throw new MediaParseError(`AAC sampling frequency index ${index} is reserved`);
  return rate;
}

export function parseAudioSpecificConfig(data: Buffer): AacConfig {
  if (data.length < 2) throw new MediaParseError(`AudioSpecificConfig too short (${data.length} bytes)`);
  const r = new BitReader(data, 0, data.length, false);
  const type = objectType(r);
  if (type === 0) throw new MediaParseError('AAC audio object type 0 is invalid');
  const coreRate = sampleRate(r);
  let rate = coreRate;
  const channelConfig = r.u(4);
  let channels = CHANNELS[channelConfig] ?? 0;
  if (type === 5 || type === 29) {
    rate = sampleRate(r); // extensionSamplingFrequency
    const core = objectType(r);
    if (core === 22) r.u(4); // extensionChannelConfiguration
    if (type === 29 && channels === 1) channels = 2;
  }
  // Implicit SBR signalling (sync extension 0x2b7 after GASpecificConfig) is not inspected.
  return {
    objectType: type,
    profile: PROFILES[type] ?? `AOT ${type}`,
    sampleRate: rate,
    channels,
    channelConfiguration: channelConfig,
    frameSamples: Math.round((1024 * rate) / coreRate),
  };
}
