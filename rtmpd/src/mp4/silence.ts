// Silent audio frames, to fill a pause in a publisher's audio: a player
// buffers an fMP4 stream's audio and video apart (MSE) and plays only where
// both are buffered, so a hole in the audio track stalls the picture.
import { parseAudioSpecificConfig } from '../codec/aac.ts';
import { MediaParseError } from '../codec/errors.ts';
import type { AudioTrackConfig } from './init.ts';

/** AAC object types whose frames are raw_data_blocks of the general audio syntax (Main, LC, LTP; SBR and PS on such a core). */
const GENERAL_AUDIO_TYPES = new Set([1, 2, 4, 5, 29]);

const ID_SCE = 0;
const ID_CPE = 1;
const ID_LFE = 3;
const ID_END = 7;

/** The syntactic elements of a raw_data_block for channelConfiguration 1-7 (ISO/IEC 14496-3 table 1.19). */
const ELEMENTS: readonly (readonly number[])[] = [
  [],
  [ID_SCE],
  [ID_CPE],
  [ID_SCE, ID_CPE],
  [ID_SCE, ID_CPE, ID_SCE],
  [ID_SCE, ID_CPE, ID_CPE],
  [ID_SCE, ID_CPE, ID_CPE, ID_LFE],
  [ID_SCE, ID_CPE, ID_CPE, ID_CPE, ID_LFE],
];

/**
 * An individual_channel_stream with no scale factor band (max_sfb 0): every
 * spectral coefficient is zero. global_gain, ics_info (long window, max_sfb
 * 0, no prediction), then no pulse, TNS or gain control data.
 */
const SILENT_ICS: [number, number][] = [
  [0, 8],
  [0, 1],
  [0, 2],
  [0, 1],
  [0, 6],
  [0, 1],
  [0, 1],
  [0, 1],
  [0, 1],
];

/** One frame of silence in the track's codec, or undefined where none is made here (MP3, AAC with a program config element). */
export function silentFrame(audio: AudioTrackConfig): Buffer | undefined {
  switch (audio.codec) {
    case 'aac':
      return silentAacFrame(audio.config);
    case 'opus':
      // RFC 6716: TOC config 31 (CELT fullband, 20 ms), mono or stereo, one frame; 0xff 0xfe codes it silent.
      return audio.channels <= 2 ? Buffer.from([audio.channels === 2 ? 0xfc : 0xf8, 0xff, 0xfe]) : undefined;
    default:
      return undefined;
  }
}

function silentAacFrame(audioSpecificConfig: Buffer): Buffer | undefined {
  let objectType: number;
  let channelConfiguration: number;
  try {
    ({ objectType, channelConfiguration } = parseAudioSpecificConfig(audioSpecificConfig));
  } catch (error) {
    if (error instanceof MediaParseError) return undefined;
    throw error;
  }
  const elements = ELEMENTS[channelConfiguration];
  if (!GENERAL_AUDIO_TYPES.has(objectType) || !elements?.length) return undefined;
  const fields: [number, number][] = [];
  const instances = new Map<number, number>();
  for (const id of elements) {
    // id_syn_ele, then element_instance_tag: each element of a kind has its own (config 4's two SCEs 0 and 1).
    const tag = instances.get(id) ?? 0;
    instances.set(id, tag + 1);
    fields.push([id, 3], [tag, 4]);
    // A channel pair without a common window has one stream per channel.
    if (id === ID_CPE) fields.push([0, 1], ...SILENT_ICS, ...SILENT_ICS);
    else fields.push(...SILENT_ICS);
  }
  fields.push([ID_END, 3]);
  return packBits(fields);
}

/** (value, bits) pairs, most significant bit first, zero-padded to a byte. */
function packBits(fields: readonly [number, number][]): Buffer {
  const bits = fields.map(([value, width]) => value.toString(2).padStart(width, '0')).join('');
  const bytes = Buffer.alloc(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i] === '1') bytes[i >> 3]! |= 0x80 >> (i & 7);
  return bytes;
}
