import { BitReader } from './bits.ts';
import { MediaParseError } from './errors.ts';

/** AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1). */
export interface AacConfig {
  /** Audio object type as coded first: 5 (SBR) / 29 (PS) when signalled explicitly, the core's (2) when backward-compatibly. */
  objectType: number;
  /** 'LC', 'HE-AAC', 'HE-AACv2', 'Main', ...: HE-AAC too where SBR is signalled after the core's config. */
  profile: string;
  /** Output sample rate: the SBR extension rate for HE-AAC, twice the coded (core) rate for ELD with dual-rate low delay SBR. */
  sampleRate: number;
  /** Output channels; with channelConfiguration 0, its program config element's (0 where none is read). */
  channels: number;
  /** channelConfiguration as coded (0: a program config element). */
  channelConfiguration: number;
  /**
   * The channel elements of a raw frame, in their order: channelConfiguration
   * 1-7's (table 1.19), or its program config element's (front, side, back,
   * LFE), for the general audio object types; empty where neither is known.
   */
  elements: readonly AacElement[];
  /** Samples a frame lasts at sampleRate: the core's 1024 or 960 (frameLengthFlag; LD's and ELD's 512 or 480), twice that where SBR doubles the rate. */
  frameSamples: number;
}

/** id_syn_ele of the elements that carry channels (table 4.85). */
export const ID_SCE = 0;
export const ID_CPE = 1;
export const ID_LFE = 3;

/** A single channel, a channel pair or an LFE element, with its element_instance_tag. */
interface AacElement {
  id: typeof ID_SCE | typeof ID_CPE | typeof ID_LFE;
  tag: number;
}

const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
const CHANNELS = [0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8];

/** The elements of channelConfiguration 1-7 (table 1.19); each element of a kind has its own tag (config 4's two SCEs 0 and 1). */
const CONFIGURATION_ELEMENTS: readonly (readonly AacElement[])[] = [
  [],
  [{ id: ID_SCE, tag: 0 }],
  [{ id: ID_CPE, tag: 0 }],
  [
    { id: ID_SCE, tag: 0 },
    { id: ID_CPE, tag: 0 },
  ],
  [
    { id: ID_SCE, tag: 0 },
    { id: ID_CPE, tag: 0 },
    { id: ID_SCE, tag: 1 },
  ],
  [
    { id: ID_SCE, tag: 0 },
    { id: ID_CPE, tag: 0 },
    { id: ID_CPE, tag: 1 },
  ],
  [
    { id: ID_SCE, tag: 0 },
    { id: ID_CPE, tag: 0 },
    { id: ID_CPE, tag: 1 },
    { id: ID_LFE, tag: 0 },
  ],
  [
    { id: ID_SCE, tag: 0 },
    { id: ID_CPE, tag: 0 },
    { id: ID_CPE, tag: 1 },
    { id: ID_CPE, tag: 2 },
    { id: ID_LFE, tag: 0 },
  ],
];

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

/**
 * Object types whose specific config is a GASpecificConfig (1.6.2.1), its
 * frameLengthFlag saying 1024 or 960 samples (512 or 480 for ER AAC LD).
 */
const GENERAL_AUDIO_TYPES = new Set([1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23]);
/** The error resilient ones, whose GASpecificConfig ends in an epConfig, before which no sync extension is looked for. */
const ERROR_RESILIENT_TYPES = new Set([17, 19, 20, 21, 22, 23]);
/** ER AAC LD and ER AAC ELD: frames of 512 samples, or 480 by frameLengthFlag (4.5.1.1, 4.6.20), the first bit of their config. */
const AOT_LD = 23;
const AOT_ELD = 39;
/** syncExtensionType of backward-compatible SBR signalling, and of PS after it (table 1.15). */
const SYNC_EXTENSION_SBR = 0x2b7;
const SYNC_EXTENSION_PS = 0x548;
const AOT_SBR = 5;
const AOT_PS = 29;
const AOT_SCALABLE = 6;

/** SBR on the core, signalled either way (or ELD's low delay SBR): its output rate, and whether PS makes a mono core stereo. */
interface Sbr {
  rate: number;
  ps: boolean;
}

/** What the config says after its first fields: the core's frame length and channels, and SBR signalled after them. */
interface Core {
  frameLength: number;
  channels: number;
  elements: readonly AacElement[];
  sbr: Sbr | undefined;
}

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
  const channelConfiguration = r.u(4);
  const core: Core = {
    frameLength: 1024,
    channels: CHANNELS[channelConfiguration] ?? 0,
    elements: [],
    sbr: undefined,
  };
  let coreType = type;
  if (type === AOT_SBR || type === AOT_PS) {
    core.sbr = { rate: sampleRate(r), ps: type === AOT_PS }; // extensionSamplingFrequency
    coreType = objectType(r);
    if (coreType === 22) r.u(4); // extensionChannelConfiguration
  }
  if (GENERAL_AUDIO_TYPES.has(coreType)) core.elements = CONFIGURATION_ELEMENTS[channelConfiguration] ?? [];
  readSpecificConfig(r, coreType, channelConfiguration, coreRate, core);
  const { frameLength, channels, elements, sbr } = core;
  const rate = sbr?.rate ?? coreRate;
  return {
    objectType: type,
    profile: profileOf(type, sbr),
    sampleRate: rate,
    channels: sbr?.ps && channels === 1 ? 2 : channels,
    channelConfiguration,
    elements,
    frameSamples: Math.round((frameLength * rate) / coreRate),
  };
}

/** HE-AAC(v2) where SBR (PS) goes with an AAC core; ELD keeps its name with its own low delay SBR. */
function profileOf(type: number, sbr: Sbr | undefined): string {
  if (sbr && type !== AOT_ELD) return sbr.ps ? 'HE-AACv2' : 'HE-AAC';
  return PROFILES[type] ?? `AOT ${type}`;
}

/**
 * Reads into `core` what the GASpecificConfig says (frame length, the
 * program config element's channels; of an ELDSpecificConfig, the frame
 * length and low delay SBR) and backward-compatible SBR signalling
 * after it, as far as they parse: a config cut short or malformed there keeps
 * what its first fields said, which decoders need alone.
 */
function readSpecificConfig(r: BitReader, coreType: number, channelConfiguration: number, coreRate: number, core: Core): void {
  const lowDelay = coreType === AOT_LD || coreType === AOT_ELD;
  if (lowDelay) core.frameLength = 512;
  if (!GENERAL_AUDIO_TYPES.has(coreType) && !lowDelay) return;
  try {
    if (r.flag()) core.frameLength = lowDelay ? 480 : 960; // frameLengthFlag
    if (coreType === AOT_ELD) {
      core.sbr = readLowDelaySbr(r, coreRate);
      return;
    }
    if (r.flag()) r.u(14); // dependsOnCoreCoder: coreCoderDelay
    const extensionFlag = r.flag();
    if (channelConfiguration === 0) Object.assign(core, readProgramConfigElement(r));
    if (core.sbr !== undefined || ERROR_RESILIENT_TYPES.has(coreType)) return;
    if (coreType === AOT_SCALABLE) r.u(3); // layerNr
    if (extensionFlag) r.bit(); // extensionFlag3: all an extension of a type that is not error resilient has
    core.sbr = readBackwardCompatibleSbr(r);
  } catch (error) {
    if (!(error instanceof MediaParseError)) throw error;
  }
}

/** A program_config_element's channel elements (table 4.2): front, side and back (each an SCE or a CPE), then LFE. */
function readProgramConfigElement(r: BitReader): Pick<Core, 'channels' | 'elements'> {
  r.u(4 + 2 + 4); // element_instance_tag, object_type, sampling_frequency_index
  const [front, side, back] = [r.u(4), r.u(4), r.u(4)];
  const lfe = r.u(2);
  const assocData = r.u(3);
  const validCc = r.u(4);
  if (r.flag()) r.u(4); // mono_mixdown_element_number
  if (r.flag()) r.u(4); // stereo_mixdown_element_number
  if (r.flag()) r.u(3); // matrix_mixdown_idx, pseudo_surround_enable
  const elements: AacElement[] = [];
  for (let i = 0; i < front + side + back; i++) elements.push({ id: r.flag() ? ID_CPE : ID_SCE, tag: r.u(4) });
  for (let i = 0; i < lfe; i++) elements.push({ id: ID_LFE, tag: r.u(4) });
  r.skip(assocData * 4 + validCc * 5);
  r.byteAlign();
  r.skip(r.u(8) * 8); // comment_field_data
  return { channels: elements.reduce((sum, { id }) => sum + (id === ID_CPE ? 2 : 1), 0), elements };
}

/**
 * ELDSpecificConfig after frameLengthFlag (ISO/IEC 14496-3 table 4.180): the
 * three resilience flags, then ldSbrPresentFlag, and with it
 * ldSbrSamplingRate. The rate coded is the core's; dual-rate SBR (1) outputs
 * twice it, and so twice the core's 480 or 512 samples a frame, as fdk-aac's
 * decoder does (extension rate = sampling rate << ldSbrSamplingRate);
 * single-rate SBR outputs the core's rate. What follows (ld_sbr_header,
 * ELD extensions) changes neither.
 */
function readLowDelaySbr(r: BitReader, coreRate: number): Sbr | undefined {
  r.u(3); // aacSectionDataResilienceFlag, aacScalefactorDataResilienceFlag, aacSpectralDataResilienceFlag
  if (!r.flag()) return undefined; // ldSbrPresentFlag
  return { rate: r.flag() ? coreRate * 2 : coreRate, ps: false };
}

/** The sync extension 0x2b7 that follows an AAC core's config (table 1.15): SBR present, its rate, and PS (0x548) after it. */
function readBackwardCompatibleSbr(r: BitReader): Sbr | undefined {
  if (r.bitsLeft() < 16 || r.u(11) !== SYNC_EXTENSION_SBR || objectType(r) !== AOT_SBR || !r.flag()) return undefined;
  const rate = sampleRate(r);
  const ps = r.bitsLeft() >= 12 && r.u(11) === SYNC_EXTENSION_PS && r.flag();
  return { rate, ps };
}
