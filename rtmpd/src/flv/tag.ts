import { av1IsKeyframe } from '../codec/av1.ts';
import { MediaParseError } from '../codec/errors.ts';
import { h264HasIdr } from '../codec/h264.ts';
import { hevcHasIrap } from '../codec/hevc.ts';

export type VideoCodec = 'h264' | 'hevc' | 'av1' | 'vp9';
export type AudioCodec = 'aac' | 'mp3' | 'opus' | 'pcm' | 'g711a' | 'g711u' | 'speex' | 'nellymoser' | 'ac3' | 'eac3' | 'flac';

/**
 * What a video message carries. Besides sequence headers, coded frames and
 * end-of-sequence markers, Enhanced RTMP has metadata (AMF, e.g. colorInfo)
 * and command frames (legacy and enhanced FrameType 5); neither is a picture.
 */
type VideoPacketKind = 'sequence-header' | 'frame' | 'end-of-sequence' | 'metadata' | 'command';
type AudioPacketKind = 'sequence-header' | 'frame' | 'end-of-sequence' | 'multichannel-config';

/** The inspections' payload, a view made only when asked for: the relay inspects every message and never needs it. */
class LazyPayload {
  readonly #body: Buffer;
  /** Where the payload begins in the body (after the FLV/Enhanced RTMP header bytes). */
  readonly dataOffset: number;

  constructor(body: Buffer, start: number) {
    this.#body = body;
    this.dataOffset = start;
  }

  /** Subarray of the body: config record (sequence header), coded frame, AMF metadata or audio payload. */
  get data(): Buffer {
    return this.#body.subarray(this.dataOffset);
  }
}

class InspectedVideo extends LazyPayload {
  readonly codec: VideoCodec;
  readonly packet: VideoPacketKind;
  readonly sequenceHeader: boolean;
  readonly endOfSequence: boolean;
  /** From the bitstream (IDR/IRAP NAL, AV1 key frame, VP9 key frame); false for non-frames. */
  readonly keyframe: boolean;
  /** FrameType bits of the header (1 key, 2 inter, 3 disposable, 4 generated key, 5 command). */
  readonly frameType: number;
  /** Milliseconds (pts - dts); 0 for CodedFramesX and codecs without it. */
  readonly compositionTime: number;
  /** True when the message used the Enhanced RTMP ExVideoTagHeader. */
  readonly enhanced: boolean;

  /** `dataStart`: where the payload begins in `body`. The fields come in order, not as an object V8 would allocate per message. */
  constructor(
    body: Buffer,
    dataStart: number,
    codec: VideoCodec,
    packet: VideoPacketKind,
    frameType: number,
    enhanced: boolean,
    keyframe = false,
    compositionTime = 0,
  ) {
    super(body, dataStart);
    this.codec = codec;
    this.packet = packet;
    this.sequenceHeader = packet === 'sequence-header';
    this.endOfSequence = packet === 'end-of-sequence';
    this.keyframe = keyframe;
    this.frameType = frameType;
    this.compositionTime = compositionTime;
    this.enhanced = enhanced;
  }
}

class InspectedAudio extends LazyPayload {
  readonly codec: AudioCodec;
  readonly packet: AudioPacketKind;
  /** AAC packet type 0, or Enhanced audio SequenceStart. */
  readonly sequenceHeader: boolean;
  readonly enhanced: boolean;
  /** Legacy header fields; undefined for Enhanced audio (the codec config carries them). */
  readonly soundRate: number | undefined;
  readonly soundSize: number | undefined;
  readonly channels: number | undefined;

  /**
   * `legacyHeader`: the first byte of a legacy tag (SoundFormat, SoundRate,
   * SoundSize, SoundType); without it the message is Enhanced audio.
   */
  constructor(body: Buffer, dataStart: number, codec: AudioCodec, packet: AudioPacketKind, legacyHeader?: number) {
    super(body, dataStart);
    this.codec = codec;
    this.packet = packet;
    this.sequenceHeader = packet === 'sequence-header';
    this.enhanced = legacyHeader === undefined;
    if (legacyHeader === undefined) {
      this.soundRate = this.soundSize = this.channels = undefined;
      return;
    }
    this.soundRate = legacySoundRate(legacyHeader);
    this.soundSize = legacyHeader & 2 ? 16 : 8;
    this.channels = legacyChannels(legacyHeader);
  }
}

/** What inspectVideo found, as a plain shape (callers and tests may build one). */
export type VideoInspection = Pick<InspectedVideo, keyof InspectedVideo>;
/** What inspectAudio found, as a plain shape. */
export type AudioInspection = Pick<InspectedAudio, keyof InspectedAudio>;

// FourCC values as big-endian uint32 (compared without string work).
const FOURCC_AVC1 = 0x61766331;
const FOURCC_HVC1 = 0x68766331;
const FOURCC_AV01 = 0x61763031;
const FOURCC_VP09 = 0x76703039;
const FOURCC_OPUS = 0x4f707573;
const FOURCC_MP4A = 0x6d703461;
const FOURCC_MP3 = 0x2e6d7033;
const FOURCC_AC3 = 0x61632d33;
const FOURCC_EC3 = 0x65632d33;
const FOURCC_FLAC = 0x664c6143;

const VIDEO_PACKET_SEQUENCE_START = 0;
const VIDEO_PACKET_CODED_FRAMES = 1;
const VIDEO_PACKET_SEQUENCE_END = 2;
const VIDEO_PACKET_CODED_FRAMES_X = 3;
const VIDEO_PACKET_METADATA = 4;
const VIDEO_PACKET_MPEG2TS_SEQUENCE_START = 5;
const PACKET_MULTITRACK_VIDEO = 6;
const PACKET_MOD_EX = 7;
const FRAME_TYPE_COMMAND = 5;

/** Where a v2 ModEx prelude chain ends, and the packet type it carried. */
interface ModExEnd {
  pos: number;
  packetType: number;
}

/**
 * Skips a v2 ModEx prelude chain (size UI8+1 or escaped UI16+1, data, then
 * modExType(4) | packetType(4)).
 */
function skipModEx(body: Buffer, pos: number, what: string): ModExEnd {
  let packetType = PACKET_MOD_EX;
  while (packetType === PACKET_MOD_EX) {
    if (pos >= body.length) throw new MediaParseError(`${what} ModEx truncated`);
    let size = body[pos++]! + 1;
    if (size === 256) {
      if (pos + 2 > body.length) throw new MediaParseError(`${what} ModEx truncated`);
      size = body.readUInt16BE(pos) + 1;
      pos += 2;
    }
    pos += size;
    if (pos >= body.length) throw new MediaParseError(`${what} ModEx data exceeds message`);
    packetType = body[pos++]! & 0x0f;
  }
  return { pos, packetType };
}

/** Whether the coded frame from `start` to the end of `body` starts a GOP, from its bitstream. */
export function videoKeyframe(codec: VideoCodec, body: Buffer, start: number, nalLengthSize: number): boolean {
  switch (codec) {
    case 'h264':
      return h264HasIdr(body, nalLengthSize, start);
    case 'hevc':
      return hevcHasIrap(body, nalLengthSize, start);
    case 'av1':
      return av1IsKeyframe(body.subarray(start));
    case 'vp9':
      if (start >= body.length) return false;
      return vp9IsKeyframe(body[start]!);
  }
}

function vp9IsKeyframe(b: number): boolean {
  // uncompressed_header: frame_marker(2) profile_low(1) profile_high(1) [reserved_zero(1) if profile 3]
  // show_existing_frame(1) frame_type(1).
  if (b >> 6 !== 2) return false;
  const profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1);
  const showExistingBit = profile === 3 ? 2 : 3;
  if ((b >> showExistingBit) & 1) return false;
  return ((b >> (showExistingBit - 1)) & 1) === 0;
}

/** Where a legacy AVC or HEVC message's payload begins: after the header byte, AVCPacketType and composition time. */
export const LEGACY_VIDEO_PAYLOAD_OFFSET = 5;

/**
 * The codec of a legacy AVC or HEVC coded frame (not a command, AVCPacketType
 * 1), the bulk of what publishers send, or undefined for any other message:
 * with legacyCompositionTime and videoKeyframe, what inspectVideo would say of
 * it without an inspection object.
 */
export function legacyVideoFrameCodec(body: Buffer): 'h264' | 'hevc' | undefined {
  if (body.length < LEGACY_VIDEO_PAYLOAD_OFFSET || body[1] !== 1) return undefined;
  const b0 = body[0]!;
  if (b0 & 0x80 || b0 >> 4 === FRAME_TYPE_COMMAND) return undefined;
  const codecId = b0 & 0x0f;
  return codecId === 7 ? 'h264' : codecId === 12 ? 'hevc' : undefined;
}

/** A legacy video message's CompositionTime (signed 24 bits), in milliseconds. */
export function legacyCompositionTime(body: Buffer): number {
  return (((body[2]! << 16) | (body[3]! << 8) | body[4]!) << 8) >> 8;
}

/**
 * Inspects an RTMP video message body (= FLV video tag body), legacy
 * (CodecID 7 AVC, 12 HEVC) or Enhanced RTMP (FourCC avc1/hvc1/av01/vp09).
 * `nalLengthSize` comes from the stream's decoder config (default 4).
 * Multitrack messages are refused; v2 ModEx preludes are skipped.
 */
export function inspectVideo(body: Buffer, nalLengthSize = 4): VideoInspection {
  if (body.length < 1) throw new MediaParseError('empty video message');
  const b0 = body[0]!;
  if (b0 & 0x80) return inspectEnhancedVideo(body, nalLengthSize);
  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  let codec: VideoCodec;
  if (codecId === 7) codec = 'h264';
  else if (codecId === 12) codec = 'hevc';
  else throw new MediaParseError(`unsupported legacy video codec id ${codecId}`);
  if (frameType === FRAME_TYPE_COMMAND) {
    return new InspectedVideo(body, 1, codec, 'command', frameType, false);
  }
  const start = LEGACY_VIDEO_PAYLOAD_OFFSET;
  if (body.length < start) throw new MediaParseError(`video message too short (${body.length} bytes)`);
  const packetType = body[1]!;
  switch (packetType) {
    case 0:
      return new InspectedVideo(body, start, codec, 'sequence-header', frameType, false);
    case 1: {
      const keyframe = videoKeyframe(codec, body, start, nalLengthSize);
      return new InspectedVideo(body, start, codec, 'frame', frameType, false, keyframe, legacyCompositionTime(body));
    }
    case 2:
      return new InspectedVideo(body, start, codec, 'end-of-sequence', frameType, false);
    default:
      throw new MediaParseError(`unknown AVC packet type ${packetType}`);
  }
}

function inspectEnhancedVideo(body: Buffer, nalLengthSize: number): VideoInspection {
  const b0 = body[0]!;
  const frameType = (b0 >> 4) & 7;
  let packetType = b0 & 0x0f;
  let pos = 1;
  if (packetType === PACKET_MOD_EX) {
    ({ pos, packetType } = skipModEx(body, pos, 'video'));
  }
  if (packetType === PACKET_MULTITRACK_VIDEO) throw new MediaParseError('Enhanced RTMP multitrack video is not supported');
  if (frameType === FRAME_TYPE_COMMAND && packetType !== VIDEO_PACKET_METADATA) {
    // No FourCC: a single UI8 VideoCommand follows, so the codec is unknown; `codec` is a
    // placeholder for 'command' packets, which carry no picture and should be ignored.
    if (pos >= body.length) throw new MediaParseError('video command frame truncated');
    return new InspectedVideo(body, pos, 'h264', 'command', frameType, true);
  }
  if (pos + 4 > body.length) throw new MediaParseError('Enhanced video message truncated in FourCC');
  const fourcc = body.readUInt32BE(pos);
  pos += 4;
  let codec: VideoCodec;
  switch (fourcc) {
    case FOURCC_AVC1:
      codec = 'h264';
      break;
    case FOURCC_HVC1:
      codec = 'hevc';
      break;
    case FOURCC_AV01:
      codec = 'av1';
      break;
    case FOURCC_VP09:
      codec = 'vp9';
      break;
    default:
      throw new MediaParseError(`unsupported video FourCC 0x${fourcc.toString(16).padStart(8, '0')}`);
  }
  switch (packetType) {
    case VIDEO_PACKET_SEQUENCE_START:
    case VIDEO_PACKET_MPEG2TS_SEQUENCE_START:
      return new InspectedVideo(body, pos, codec, 'sequence-header', frameType, true);
    case VIDEO_PACKET_CODED_FRAMES:
    case VIDEO_PACKET_CODED_FRAMES_X: {
      // CodedFramesX is CodedFrames without the composition time field (it is 0).
      let cts = 0;
      if (packetType === VIDEO_PACKET_CODED_FRAMES && (codec === 'h264' || codec === 'hevc')) {
        if (pos + 3 > body.length) throw new MediaParseError('Enhanced video message truncated in composition time');
        cts = (((body[pos]! << 16) | (body[pos + 1]! << 8) | body[pos + 2]!) << 8) >> 8;
        pos += 3;
      }
      return new InspectedVideo(body, pos, codec, 'frame', frameType, true, videoKeyframe(codec, body, pos, nalLengthSize), cts);
    }
    case VIDEO_PACKET_SEQUENCE_END:
      return new InspectedVideo(body, pos, codec, 'end-of-sequence', frameType, true);
    case VIDEO_PACKET_METADATA:
      return new InspectedVideo(body, pos, codec, 'metadata', frameType, true);
    default:
      throw new MediaParseError(`unknown Enhanced video packet type ${packetType}`);
  }
}

const LEGACY_AUDIO: readonly (AudioCodec | undefined)[] = [
  'pcm', // 0 linear PCM, platform endian
  undefined, // 1 ADPCM
  'mp3', // 2
  'pcm', // 3 linear PCM, little endian
  'nellymoser', // 4 16 kHz mono
  'nellymoser', // 5 8 kHz mono
  'nellymoser', // 6
  'g711a', // 7
  'g711u', // 8
  undefined, // 9 ExHeader (handled separately)
  'aac', // 10
  'speex', // 11
  undefined, // 12
  undefined, // 13
  'mp3', // 14 MP3 8 kHz
  undefined, // 15 device specific
];
const SOUND_RATES = [5512, 11025, 22050, 44100];
const AUDIO_PACKET_SEQUENCE_START = 0;
const AUDIO_PACKET_CODED_FRAMES = 1;
const AUDIO_PACKET_SEQUENCE_END = 2;
const AUDIO_PACKET_MULTICHANNEL_CONFIG = 4;
const AUDIO_PACKET_MULTITRACK = 5;

/** Where an AAC frame's payload begins: after the legacy header byte and the AAC packet type. */
export const AAC_FRAME_OFFSET = 2;

/**
 * Whether the body is a legacy AAC raw frame (SoundFormat 10, AACPacketType 1), the bulk of
 * what publishers send: what inspectAudio would say of it is known without an
 * inspection object.
 */
export function isAacFrame(body: Buffer): boolean {
  return body.length >= AAC_FRAME_OFFSET && body[0]! >> 4 === 10 && body[1] === 1;
}

/** Where a legacy audio frame's payload begins (AAC's after its AACPacketType: AAC_FRAME_OFFSET): after the header byte. */
export const LEGACY_AUDIO_PAYLOAD_OFFSET = 1;

/** Where an Enhanced RTMP '.mp3' CodedFrames message's frame begins: after its header byte and FourCC. */
const ENHANCED_MP3_FRAME_OFFSET = 5;
const ENHANCED_MP3_FRAMES_HEADER = (9 << 4) | AUDIO_PACKET_CODED_FRAMES;

/**
 * Where the MPEG audio frame begins in an MP3 frame message, as inspectAudio
 * would say: a legacy one's (SoundFormat 2, or 14 for 8 kHz) after its
 * header byte, an Enhanced RTMP '.mp3' CodedFrames message's (with no ModEx)
 * after its FourCC; undefined for any other message. Read in place: the hub
 * asks it of every audio message of an MP3 track.
 */
export function mp3FrameOffset(body: Buffer): number | undefined {
  if (body.length < 1) return undefined;
  if (LEGACY_AUDIO[body[0]! >> 4] === 'mp3') return LEGACY_AUDIO_PAYLOAD_OFFSET;
  const enhanced =
    body[0] === ENHANCED_MP3_FRAMES_HEADER && body.length >= ENHANCED_MP3_FRAME_OFFSET && body.readUInt32BE(1) === FOURCC_MP3;
  return enhanced ? ENHANCED_MP3_FRAME_OFFSET : undefined;
}

/**
 * The codec of a legacy frame that its header byte describes alone (G.711,
 * PCM, Nellymoser, Speex: not AAC, which has packet types, nor MP3, whose
 * frames have headers of their own), or undefined for any other message:
 * with legacySoundRate and legacyChannels, what inspectAudio would say of it
 * without an inspection object.
 */
export function flagDescribedCodec(body: Buffer): AudioCodec | undefined {
  if (body.length < 1) return undefined;
  const codec = LEGACY_AUDIO[body[0]! >> 4];
  return codec === 'aac' || codec === 'mp3' ? undefined : codec;
}

/**
 * The sample rate a legacy header byte gives: its SoundRate bits, but for the
 * formats of one rate: Nellymoser 8 and 16 kHz, MP3 8 kHz, G.711 8 kHz
 * (ffmpeg flags it as 5.5 kHz, 0x72, and reads it as 8 kHz).
 */
export function legacySoundRate(header: number): number {
  const format = header >> 4;
  return EIGHT_KHZ_FORMATS.has(format) ? 8000 : format === 4 ? 16000 : SOUND_RATES[(header >> 2) & 3]!;
}

/** Nellymoser 8 kHz (5), G.711 A-law (7) and mu-law (8), MP3 8 kHz (14). */
const EIGHT_KHZ_FORMATS: ReadonlySet<number> = new Set([5, 7, 8, 14]);

/** The channels a legacy header byte gives (SoundType). */
export const legacyChannels = (header: number): number => (header & 1) + 1;

/**
 * Inspects an RTMP audio message body (= FLV audio tag body): legacy
 * SoundFormat (AAC, MP3, PCM, G.711, Speex, Nellymoser) or Enhanced RTMP
 * (SoundFormat 9 + FourCC Opus/mp4a/.mp3/ac-3/ec-3/fLaC). Multitrack is refused.
 */
export function inspectAudio(body: Buffer): AudioInspection {
  if (body.length < 1) throw new MediaParseError('empty audio message');
  const b0 = body[0]!;
  const format = b0 >> 4;
  if (format === 9) return inspectEnhancedAudio(body);
  const codec = LEGACY_AUDIO[format];
  if (codec === undefined) throw new MediaParseError(`unsupported legacy sound format ${format}`);
  if (codec === 'aac') {
    if (body.length < 2) throw new MediaParseError('AAC audio message truncated');
    const packetType = body[1]!;
    if (packetType > 1) throw new MediaParseError(`unknown AAC packet type ${packetType}`);
    return new InspectedAudio(body, AAC_FRAME_OFFSET, codec, packetType === 0 ? 'sequence-header' : 'frame', b0);
  }
  return new InspectedAudio(body, LEGACY_AUDIO_PAYLOAD_OFFSET, codec, 'frame', b0);
}

function inspectEnhancedAudio(body: Buffer): AudioInspection {
  let packetType = body[0]! & 0x0f;
  let pos = 1;
  if (packetType === PACKET_MOD_EX) {
    ({ pos, packetType } = skipModEx(body, pos, 'audio'));
  }
  if (packetType === AUDIO_PACKET_MULTITRACK) throw new MediaParseError('Enhanced RTMP multitrack audio is not supported');
  if (pos + 4 > body.length) throw new MediaParseError('Enhanced audio message truncated in FourCC');
  const fourcc = body.readUInt32BE(pos);
  pos += 4;
  let codec: AudioCodec;
  switch (fourcc) {
    case FOURCC_OPUS:
      codec = 'opus';
      break;
    case FOURCC_MP4A:
      codec = 'aac';
      break;
    case FOURCC_MP3:
      codec = 'mp3';
      break;
    case FOURCC_AC3:
      codec = 'ac3';
      break;
    case FOURCC_EC3:
      codec = 'eac3';
      break;
    case FOURCC_FLAC:
      codec = 'flac';
      break;
    default:
      throw new MediaParseError(`unsupported audio FourCC 0x${fourcc.toString(16).padStart(8, '0')}`);
  }
  let packet: AudioPacketKind;
  switch (packetType) {
    case AUDIO_PACKET_SEQUENCE_START:
      packet = 'sequence-header';
      break;
    case AUDIO_PACKET_CODED_FRAMES:
      packet = 'frame';
      break;
    case AUDIO_PACKET_SEQUENCE_END:
      packet = 'end-of-sequence';
      break;
    case AUDIO_PACKET_MULTICHANNEL_CONFIG:
      packet = 'multichannel-config';
      break;
    default:
      throw new MediaParseError(`unknown Enhanced audio packet type ${packetType}`);
  }
  return new InspectedAudio(body, pos, codec, packet);
}
