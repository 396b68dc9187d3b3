// The fMP4 (CMAF) initialization segment: ftyp and a moov whose tracks carry
// only their decoder configuration (no samples: those come in moof/mdat
// fragments), plus mvex so players expect fragments.
import { MediaParseError } from '../codec/errors.ts';
import type { AudioCodec, VideoCodec } from '../flv/tag.ts';
import { box, fullBox, u16, u32, u8, UNITY_MATRIX, zeros } from './boxes.ts';

export const VIDEO_TIMESCALE = 90_000;

export interface VideoTrackConfig {
  kind: 'video';
  codec: VideoCodec;
  /** The decoder configuration record as the publisher sent it (avcC, hvcC or av1C payload). */
  config: Buffer;
  width: number;
  height: number;
}

export interface AudioTrackConfig {
  kind: 'audio';
  codec: AudioCodec;
  /** AAC AudioSpecificConfig or an OpusHead; for MP3 (which has none) its first frame's header, the template of its silence. */
  config: Buffer;
  sampleRate: number;
  channels: number;
  /** Samples a frame lasts at sampleRate: AAC's (AacConfig.frameSamples; 1024 when not given), MP3's by its layer and version (mp3FrameSamples). */
  frameSamples?: number;
}

export type TrackConfig = VideoTrackConfig | AudioTrackConfig;

/** Codecs an fMP4 track can carry here. */
export const MP4_VIDEO_CODECS: ReadonlySet<VideoCodec> = new Set(['h264', 'hevc', 'av1']);
export const MP4_AUDIO_CODECS: ReadonlySet<AudioCodec> = new Set(['aac', 'opus', 'mp3']);

/** The timescale of a track's decode times: 90 kHz for video, the sample rate for audio. */
const timescaleOf = (track: TrackConfig): number => (track.kind === 'video' ? VIDEO_TIMESCALE : track.sampleRate);

/** ftyp + moov for the tracks, numbered 1.. in order. */
export function initSegment(tracks: readonly TrackConfig[]): Buffer {
  const ftyp = box('ftyp', Buffer.from('iso5', 'latin1'), u32(512), Buffer.from('iso5iso6mp41', 'latin1'));
  const mvhd = fullBox(
    'mvhd',
    0,
    0,
    u32(0, 0, 1000, 0), // creation, modification, timescale, duration (unknown: fragmented)
    u32(0x00010000),
    u16(0x0100, 0),
    zeros(8),
    UNITY_MATRIX,
    zeros(24),
    u32(tracks.length + 1),
  );
  const traks = tracks.map((track, i) => trak(track, i + 1));
  const trexes = tracks.map((_, i) => fullBox('trex', 0, 0, u32(i + 1, 1, 0, 0, 0)));
  return Buffer.concat([ftyp, box('moov', mvhd, ...traks, box('mvex', ...trexes))]);
}

function trak(track: TrackConfig, id: number): Buffer {
  const video = track.kind === 'video';
  const tkhd = fullBox(
    'tkhd',
    0,
    3, // enabled, in movie
    u32(0, 0, id, 0, 0),
    zeros(8),
    u16(0, 0, video ? 0 : 0x0100, 0),
    UNITY_MATRIX,
    u32(video ? track.width << 16 : 0, video ? track.height << 16 : 0),
  );
  const mdhd = fullBox('mdhd', 0, 0, u32(0, 0, timescaleOf(track), 0), u16(0x55c4 /* und */, 0));
  const handler = video ? 'vide' : 'soun';
  const hdlr = fullBox(
    'hdlr',
    0,
    0,
    u32(0),
    Buffer.from(handler, 'latin1'),
    zeros(12),
    Buffer.from(video ? 'VideoHandler\0' : 'SoundHandler\0', 'latin1'),
  );
  const mediaHeader = video ? fullBox('vmhd', 0, 1, zeros(8)) : fullBox('smhd', 0, 0, zeros(4));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32(1), sampleEntry(track)),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0, 0)),
    fullBox('stco', 0, 0, u32(0)),
  );
  return box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', mediaHeader, dinf, stbl)));
}

function sampleEntry(track: TrackConfig): Buffer {
  return track.kind === 'video' ? visualSampleEntry(track) : audioSampleEntry(track);
}

function visualSampleEntry(track: VideoTrackConfig): Buffer {
  const [type, configBox] =
    track.codec === 'h264'
      ? ['avc1', box('avcC', track.config)]
      : track.codec === 'hevc'
        ? ['hvc1', box('hvcC', track.config)]
        : track.codec === 'av1'
          ? ['av01', box('av1C', av1Config(track.config))]
          : unsupported(`video codec ${track.codec}`);
  return box(
    type,
    zeros(6),
    u16(1), // data_reference_index
    zeros(16),
    u16(track.width, track.height),
    u32(0x00480000, 0x00480000, 0), // 72 dpi, reserved
    u16(1), // frame_count
    zeros(32), // compressorname
    u16(0x0018, 0xffff), // depth, pre_defined -1
    configBox,
  );
}

/** Enhanced RTMP may wrap av1C in the MPEG-2 TS AV1 video descriptor (tag 0x80, length). */
const av1Config = (config: Buffer): Buffer => (config.length >= 3 && config[0] === 0x80 ? config.subarray(2) : config);

function audioSampleEntry(track: AudioTrackConfig): Buffer {
  const header = [zeros(6), u16(1), zeros(8), u16(track.channels, 16, 0, 0), u32((track.sampleRate & 0xffff) << 16)];
  switch (track.codec) {
    case 'aac':
      return box('mp4a', ...header, esds(0x40, track.config));
    case 'mp3':
      return box('mp4a', ...header, esds(0x6b, Buffer.alloc(0)));
    case 'opus':
      return box('Opus', ...header, dOps(track.config));
    default:
      return unsupported(`audio codec ${track.codec}`);
  }
}

/** An MPEG-4 descriptor: tag, length in the 4-byte form (any size), body. */
const descriptor = (tag: number, ...body: Buffer[]): Buffer => {
  const length = body.reduce((sum, part) => sum + part.length, 0);
  return Buffer.concat([
    u8(tag, 0x80 | ((length >> 21) & 0x7f), 0x80 | ((length >> 14) & 0x7f), 0x80 | ((length >> 7) & 0x7f), length & 0x7f),
    ...body,
  ]);
};

/** ES descriptor with the decoder config (object type indication, audio stream) and its specific info. */
function esds(objectType: number, specificInfo: Buffer): Buffer {
  const decoderConfig = descriptor(
    0x04,
    u8(objectType, 0x15), // streamType 5 (audio) << 2 | upStream 0 | reserved 1
    zeros(3), // bufferSizeDB
    u32(0, 0), // max, average bitrate: unknown
    ...(specificInfo.length > 0 ? [descriptor(0x05, specificInfo)] : []),
  );
  return fullBox('esds', 0, 0, descriptor(0x03, u16(0), u8(0), decoderConfig, descriptor(0x06, u8(0x02))));
}

/** Opus in ISO BMFF: the OpusHead fields, big-endian, in a dOps box. */
function dOps(opusHead: Buffer): Buffer {
  if (opusHead.length < 19 || opusHead.toString('latin1', 0, 8) !== 'OpusHead') throw new MediaParseError('Opus config is not an OpusHead');
  const channels = opusHead[9]!;
  const family = opusHead[18]!;
  const body = [u8(0, channels), u16(opusHead.readUInt16LE(10)), u32(opusHead.readUInt32LE(12)), u16(opusHead.readInt16LE(16)), u8(family)];
  if (family !== 0) {
    if (opusHead.length < 21 + channels) throw new MediaParseError('OpusHead channel mapping table truncated');
    body.push(opusHead.subarray(19, 21 + channels));
  }
  return box('dOps', ...body);
}

function unsupported(what: string): never {
  throw new MediaParseError(`${what} cannot be written to fMP4`);
}
