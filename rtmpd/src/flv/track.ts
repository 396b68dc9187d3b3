import { parseAudioSpecificConfig } from '../codec/aac.ts';
import { parseAv1CodecConfig } from '../codec/av1.ts';
import {
  mpegAudioChannelMode,
  mpegAudioChannels,
  mpegAudioFrameSamples,
  mpegAudioLayer,
  mpegAudioSampleRate,
  mpegAudioVersion,
} from '../codec/mp3.ts';
import { MediaParseError } from '../codec/errors.ts';
import { parseAvcDecoderConfig, parseH264Sps } from '../codec/h264.ts';
import { parseHevcDecoderConfig } from '../codec/hevc.ts';
import {
  AAC_FRAME_OFFSET,
  flagDescribedCodec,
  isAacFrame,
  LEGACY_AUDIO_PAYLOAD_OFFSET,
  legacyChannels,
  legacySoundRate,
  mp3FrameOffset,
  type AudioCodec,
  type AudioInspection,
  type VideoCodec,
  type VideoInspection,
} from './tag.ts';

export interface VideoTrackInfo {
  codec: VideoCodec;
  profile?: string;
  level?: string;
  width?: number;
  height?: number;
  fps?: number;
  /** NAL length prefix size for h264/hevc coded frames; pass it to inspectVideo. */
  nalLengthSize?: number;
}

export interface AudioTrackInfo {
  codec: AudioCodec;
  profile?: string;
  sampleRate?: number;
  channels?: number;
  /** MPEG audio's (MP3's) layer and channel_mode, from its frames' header: a change of either is another track, as one of its rate is. */
  layer?: 1 | 2 | 3;
  channelMode?: number;
}

/**
 * Describes a video track from its sequence header (throws MediaParseError on
 * a malformed config record). For anything but a sequence header it returns
 * just the codec.
 */
export function describeVideoTrack(inspection: VideoInspection): VideoTrackInfo {
  const { codec, data } = inspection;
  if (!inspection.sequenceHeader) return { codec };
  switch (codec) {
    case 'h264': {
      const avc = parseAvcDecoderConfig(data);
      const sps = parseH264Sps(avc.sps[0]!);
      const info: VideoTrackInfo = {
        codec,
        profile: sps.profile,
        level: sps.level,
        width: sps.width,
        height: sps.height,
        nalLengthSize: avc.nalLengthSize,
      };
      if (sps.fps !== undefined) info.fps = sps.fps;
      return info;
    }
    case 'hevc': {
      const hevc = parseHevcDecoderConfig(data);
      const info: VideoTrackInfo = { codec, profile: hevc.profile, level: hevc.level, nalLengthSize: hevc.nalLengthSize };
      if (hevc.width !== undefined) info.width = hevc.width;
      if (hevc.height !== undefined) info.height = hevc.height;
      if (hevc.fps !== undefined) info.fps = hevc.fps;
      return info;
    }
    case 'av1': {
      // MPEG2TSSequenceStart carries the AV1 video descriptor: tag 0x80, length, then av1C's layout.
      const record = data.length >= 3 && data[0] === 0x80 ? data.subarray(2) : data;
      const av1 = parseAv1CodecConfig(record);
      const info: VideoTrackInfo = { codec, profile: av1.profile, level: av1.level };
      if (av1.width !== undefined) info.width = av1.width;
      if (av1.height !== undefined) info.height = av1.height;
      if (av1.fps !== undefined) info.fps = av1.fps;
      return info;
    }
    case 'vp9': {
      // VPCodecConfigurationRecord, possibly behind the vpcC FullBox version/flags.
      const fullBox = data.length >= 12 && data[0] === 1 && data[1] === 0 && data[2] === 0 && data[3] === 0;
      const record = fullBox ? data.subarray(4) : data;
      if (record.length < 2) throw new MediaParseError(`vpcC too short (${record.length} bytes)`);
      const level = record[1]!;
      return { codec, profile: `Profile ${record[0]}`, level: `${Math.floor(level / 10)}.${level % 10}` };
    }
  }
}

/** Describes an audio track from its sequence header (AAC ASC, Opus ID header); otherwise from a frame (frameAudioFormat). */
export function describeAudioTrack(inspection: AudioInspection): AudioTrackInfo {
  const { codec, data } = inspection;
  if (inspection.sequenceHeader) {
    if (codec === 'aac') {
      const asc = parseAudioSpecificConfig(data);
      return { codec, profile: asc.profile, sampleRate: asc.sampleRate, channels: asc.channels };
    }
    if (codec === 'opus') return describeOpus(data);
  }
  return { codec, ...frameAudioFormat(inspection) };
}

/**
 * The rate and channels an audio frame gives: an MP3 frame's own header where
 * it starts with one (FLV's flags cannot say 48 kHz: ffmpeg flags a 48 kHz MP3
 * as 44 kHz; Enhanced RTMP's .mp3 has no flags at all), with its layer and
 * channel mode, else FLV's legacy flags; none for an Enhanced frame (its
 * sequence header describes it).
 */
function frameAudioFormat(inspection: AudioInspection): Omit<AudioTrackInfo, 'codec' | 'profile'> {
  const headerRate = mp3HeaderRate(inspection);
  if (headerRate !== undefined) {
    const { data } = inspection;
    return {
      sampleRate: headerRate,
      channels: mpegAudioChannels(data),
      layer: mpegAudioLayer(data),
      channelMode: mpegAudioChannelMode(data),
    };
  }
  const format: Pick<AudioTrackInfo, 'sampleRate' | 'channels'> = {};
  if (inspection.soundRate !== undefined) format.sampleRate = inspection.soundRate;
  if (inspection.channels !== undefined) format.channels = inspection.channels;
  return format;
}

/**
 * Whether a frame of the track's codec gives another format than the
 * track's (frameAudioFormat's): an MP3 frame's header another rate, layer or
 * channel mode (which says the channels), FLV's flags another rate or channel
 * count. Compared in place: the hub asks it of every MP3 frame, so it
 * allocates nothing. A frame with no rate (Enhanced, but for an MP3 frame's
 * header) leaves the track to its sequence header.
 */
export function changesAudioFormat(track: AudioTrackInfo, inspection: AudioInspection): boolean {
  if (mp3HeaderRate(inspection) !== undefined) return !hasTrackMp3Header(track, inspection.data, 0);
  if (inspection.soundRate === undefined) return false;
  return inspection.soundRate !== track.sampleRate || inspection.channels !== track.channels;
}

/**
 * Where the payload begins of a message that is a frame of `track` needing no
 * inspection, compared in place: a legacy AAC frame of an AAC track, an MP3
 * frame (legacy or Enhanced: mp3FrameOffset) whose header gives the track's
 * rate (and so version), layer and channel mode, or a legacy frame whose
 * header byte gives the track's codec, rate and channels (G.711, PCM,
 * Nellymoser, Speex: flagDescribedCodec). Undefined for any other message,
 * which inspectAudio reads. The hub asks it of every audio message, so it
 * allocates nothing.
 */
export function trackFrameOffset(track: AudioTrackInfo, body: Buffer): number | undefined {
  if (track.codec === 'aac') return isAacFrame(body) ? AAC_FRAME_OFFSET : undefined;
  if (track.codec === 'mp3') {
    const offset = mp3FrameOffset(body);
    return offset !== undefined && hasTrackMp3Header(track, body, offset) ? offset : undefined;
  }
  if (flagDescribedCodec(body) !== track.codec) return undefined;
  const header = body[0]!;
  return legacySoundRate(header) === track.sampleRate && legacyChannels(header) === track.channels
    ? LEGACY_AUDIO_PAYLOAD_OFFSET
    : undefined;
}

const mp3HeaderRate = (inspection: AudioInspection): number | undefined =>
  inspection.codec === 'mp3' ? mpegAudioSampleRate(inspection.data) : undefined;

/**
 * Whether the MPEG audio frame at `at` in `body` starts with a header of
 * `track`'s rate (which says the version), layer and channel mode (which
 * says the channels); the bitrate, padding and mode extension vary within a
 * track. Read in place: the hub asks it of every MP3 frame.
 */
const hasTrackMp3Header = (track: AudioTrackInfo, body: Buffer, at: number): boolean =>
  mpegAudioSampleRate(body, at) === track.sampleRate &&
  mpegAudioLayer(body, at) === track.layer &&
  mpegAudioChannelMode(body, at) === track.channelMode;

/**
 * Samples a frame of an MP3 track lasts, as its frames' header says
 * (mpegAudioFrameSamples: the track keeps the header's layer, and its rate
 * gives the version). A track whose frames start with no header has only
 * FLV's flags (a rate, or none for Enhanced RTMP): its frames are taken for
 * Layer III's, the layer SoundFormat 2 and '.mp3' are named for and that
 * encoders send, at that rate's version (44.1 kHz's where there is none).
 */
export const mp3FrameSamples = (track: AudioTrackInfo): number =>
  mpegAudioFrameSamples({ version: mpegAudioVersion(track.sampleRate ?? 44_100), layer: track.layer ?? 3 });

/** OpusHead (RFC 7845 5.1): 'OpusHead', version, channel count, pre-skip, input sample rate, ... */
function describeOpus(data: Buffer): AudioTrackInfo {
  if (data.length < 19 || data.toString('latin1', 0, 8) !== 'OpusHead') {
    throw new MediaParseError('Opus sequence header is not an OpusHead');
  }
  // Opus always decodes at 48 kHz; the header's input rate is informational.
  return { codec: 'opus', sampleRate: 48000, channels: data[9]! };
}
