// Silent audio frames, to fill a pause in a publisher's audio: a player
// buffers an fMP4 stream's audio and video apart (MSE) and plays only where
// both are buffered, so a hole in the audio track stalls the picture.
import { ID_CPE, parseAudioSpecificConfig, type AacConfig } from '../codec/aac.ts';
import { MediaParseError } from '../codec/errors.ts';
import { parseMpegAudioHeader } from '../codec/mp3.ts';
import type { AudioTrackConfig } from './init.ts';

/** AAC object types whose frames are raw_data_blocks of the general audio syntax (Main, LC, LTP; SBR and PS on such a core). */
const GENERAL_AUDIO_TYPES = new Set([1, 2, 4, 5, 29]);

const ID_END = 7;

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

/** One frame of silence in the track's codec, or undefined where none is made here (AAC but the general audio syntax's, MPEG audio but Layer III). */
export function silentFrame(audio: AudioTrackConfig): Buffer | undefined {
  switch (audio.codec) {
    case 'aac':
      return silentAacFrame(audio.config);
    case 'mp3':
      return silentMp3Frame(audio.config);
    case 'opus':
      // RFC 6716: TOC config 31 (CELT fullband, 20 ms), mono or stereo, one frame; 0xff 0xfe codes it silent.
      return audio.channels <= 2 ? Buffer.from([audio.channels === 2 ? 0xfc : 0xf8, 0xff, 0xfe]) : undefined;
    default:
      return undefined;
  }
}

function silentAacFrame(audioSpecificConfig: Buffer): Buffer | undefined {
  let config: AacConfig;
  try {
    config = parseAudioSpecificConfig(audioSpecificConfig);
  } catch (error) {
    if (error instanceof MediaParseError) return undefined;
    throw error;
  }
  // The elements of channelConfiguration 1-7, or of its program config element, each with its element_instance_tag.
  const { objectType, elements } = config;
  if (!GENERAL_AUDIO_TYPES.has(objectType) || elements.length === 0) return undefined;
  const fields: [number, number][] = [];
  for (const { id, tag } of elements) {
    fields.push([id, 3], [tag, 4]);
    // A channel pair without a common window has one stream per channel.
    if (id === ID_CPE) fields.push([0, 1], ...SILENT_ICS, ...SILENT_ICS);
    else fields.push(...SILENT_ICS);
  }
  fields.push([ID_END, 3]);
  return packBits(fields);
}

/** Layer III bitrates in kbit/s by bitrate_index 1-14: MPEG-1, then MPEG-2 and 2.5 (ISO/IEC 11172-3 2.4.2.3, 13818-3 2.4.2.3). */
const MP3_KBPS_MPEG1 = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MP3_KBPS_LSF = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/**
 * A Layer III frame of silence in the version, sample rate and channel mode
 * of `header` (the stream's first frame's), at the smallest bitrate that
 * holds its side info: every granule has global_gain 0 and no scale factor,
 * so every sample is zero. Its main data is not left to the bit reservoir: a
 * frame after a pause whose main_data_begin points back into the
 * publisher's frames would take our bytes for its own and decode noise. The
 * count1 region of each granule and channel takes it all instead, as
 * quadruples of zeros (count1 table B codes 0000 as 1111); a decoder then
 * finds the reservoir empty and mutes what of that frame lies in it.
 */
function silentMp3Frame(header: Buffer): Buffer | undefined {
  const stream = parseMpegAudioHeader(header);
  if (stream?.layer !== 3) return undefined;
  const mpeg1 = stream.version === 1;
  const { channels } = stream;
  const sideInfoBytes = mpeg1 ? (channels === 1 ? 17 : 32) : channels === 1 ? 9 : 17;
  const kbps = mpeg1 ? MP3_KBPS_MPEG1 : MP3_KBPS_LSF;
  // 144 x bitrate / rate bytes for MPEG-1's 1152 samples, 72 x for MPEG-2's 576; no padding.
  const frameBytes = (index: number) => Math.floor(((mpeg1 ? 144 : 72) * kbps[index]! * 1000) / stream.sampleRate);
  const bitrateIndex = kbps.findIndex((_, index) => frameBytes(index) >= 4 + sideInfoBytes);
  const quadruples = (frameBytes(bitrateIndex) - 4 - sideInfoBytes) * 2;
  const fields: [number, number][] = [
    [0xff, 8],
    [header[1]! >> 1, 7], // sync, version and layer as the stream's
    [1, 1], // protection_bit: no CRC
    [bitrateIndex + 1, 4],
    [(header[2]! >> 2) & 3, 2], // sampling_frequency as the stream's
    [0, 2], // padding, private
    [stream.channelMode, 2],
    [0, 2], // mode_extension: no intensity or M/S stereo
    [header[3]! & 0x0f, 4], // copyright, original, emphasis as the stream's
    [0, mpeg1 ? 9 : 8], // main_data_begin: nothing from the reservoir
    [0, mpeg1 ? (channels === 1 ? 5 : 3) : channels], // private_bits
  ];
  if (mpeg1) fields.push([0, 4 * channels]); // scfsi
  const parts = (mpeg1 ? 2 : 1) * channels; // granules x channels
  for (let part = 0; part < parts; part++) {
    // At the smallest bitrate a part's share is at most 123 quadruples, within the count1 region's 144.
    const share = Math.floor(quadruples / parts) + (part < quadruples % parts ? 1 : 0);
    fields.push(
      [share * 4, 12], // part2_3_length
      [0, 9], // big_values
      [0, 8], // global_gain
      [0, mpeg1 ? 4 : 9], // scalefac_compress: no scale factor bits
      [0, 1], // window_switching_flag
      [0, 15], // table_select
      [0, 7], // region0_count, region1_count
      [0, mpeg1 ? 2 : 1], // (MPEG-1: preflag), scalefac_scale
      [1, 1], // count1table_select: table B
    );
  }
  return Buffer.concat([packBits(fields), Buffer.alloc(quadruples / 2, 0xff)]);
}

/** (value, bits) pairs, most significant bit first, zero-padded to a byte. */
function packBits(fields: readonly [number, number][]): Buffer {
  const bits = fields.map(([value, width]) => value.toString(2).padStart(width, '0')).join('');
  const bytes = Buffer.alloc(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i] === '1') bytes[i >> 3]! |= 0x80 >> (i & 7);
  return bytes;
}
