// Hub packets → MPEG-TS segments for HLS: each opens with the PAT and PMT
// and (video) a keyframe, cut on the first keyframe after `segmentSeconds`.
// H.264/HEVC leave AVCC for Annex B, each access unit behind an access unit
// delimiter and each keyframe behind the parameter sets (a TS decoder has no
// out-of-band config); AAC frames get an ADTS header (adts.ts), MP3 frames go
// as they are. Timestamps are the publisher's, at 90 kHz. Audio that pauses
// while video runs is filled with silent frames at the live edge, as the
// fragmenter does for fMP4 (AUDIO_PAUSE_SECONDS): hls.js stalled for good at
// a 5 s hole in TS audio too (rtmpd/test/hls-browser.test.ts).
import { parseAudioSpecificConfig } from '../codec/aac.ts';
import { annexBConfig, frameToAnnexB, type AnnexBCodec } from '../codec/annexb.ts';
import { MediaParseError } from '../codec/errors.ts';
import { mpegAudioVersion } from '../codec/mp3.ts';
import { mp3FrameSamples, type AudioTrackInfo } from '../flv/track.ts';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import { MAX_FRAGMENT_BYTES } from '../mp4/fragment.ts';
import { AUDIO_PAUSE_SECONDS, MAX_FRAGMENT_SAMPLES, STEP_BACK_SECONDS, STEP_FORWARD_SECONDS, Unwrapper } from '../mp4/fragmenter.ts';
import { silentFrame } from '../mp4/silence.ts';
import { adtsConfig, adtsHeader, type AdtsConfig } from './adts.ts';
import {
  AUDIO_PID,
  AUDIO_STREAM_ID,
  StreamType,
  TsWriter,
  VIDEO_PID,
  VIDEO_STREAM_ID,
  type ElementaryStream,
  type Pes,
} from './packets.ts';

const CLOCK = 90_000;
/**
 * Every PTS and DTS is this far after the PCR (the video's DTS, or the
 * audio's PTS alone): a decoder's buffer is given time, and a B-frame's DTS
 * before its PTS never goes below 0.
 */
const PCR_LEAD = CLOCK;
/** Audio frames gathered in one PES: fewer, fuller packets than one PES (and its stuffing) per 23 ms frame. */
const AUDIO_FRAMES_PER_PES = 5;

export interface TsSegment {
  bytes: Buffer;
  /** Media time of its start, in seconds (the publisher's clock). */
  start: number;
  duration: number;
  /** Unix milliseconds of its start. */
  wallClock: number;
  /** Starts another timeline or set of tracks than the segment before (EXT-X-DISCONTINUITY). */
  discontinuity: boolean;
}

interface VideoTrack {
  codec: AnnexBCodec;
  type: StreamType;
  config: Buffer;
  nalLengthSize: number;
  /** NAL units before a frame's: the access unit delimiter; on a keyframe, then the parameter sets. */
  leading: Buffer[];
  keyframeLeading: Buffer[];
  delimiterNalType: number;
}

interface AudioTrack {
  type: StreamType;
  /** The hub's track whose frames are written (a frame of another is from before a change). */
  info: AudioTrackInfo;
  /** The AudioSpecificConfig (AAC); empty for MP3. */
  config: Buffer;
  adts: AdtsConfig | undefined;
  /** How long a frame lasts, at 90 kHz. */
  frameTicks: number;
  /** A silent frame, ADTS header included, for a pause (MP3's is made from its first frame's header). */
  silence: Buffer[] | undefined;
}

export class TsSegmenter {
  private readonly stream: Stream;
  private readonly segmentTicks: number;
  private readonly maxSegmentTicks: number;
  private readonly sink: (segment: TsSegment) => void;
  private readonly writer = new TsWriter();
  private video: VideoTrack | undefined;
  private audio: AudioTrack | undefined;
  private started = false;
  private discontinuity = false;
  private start = 0;
  private wallClock = 0;
  /** The latest end of a frame written to the segment (its time plus the step to the frame before). */
  private end = 0;
  private pesCount = 0;
  /** Audio went into the segment (or waits for its PES): a new audio track ends it, rather than join it. */
  private audioWritten = false;
  private lastVideoDts = 0;
  private lastVideoStep = 0;
  private lastAudioPts: number | undefined;
  /** Where the next audio frame is due (90 kHz): the last one's end. */
  private audioNext: number | undefined;
  /** Silence was written for a pause, and no frame came since. */
  private audioPaused = false;
  private pendingAudio: { pts: number; pieces: Buffer[] }[] = [];
  private readonly videoClock = new Unwrapper();
  private readonly audioClock = new Unwrapper();

  constructor(stream: Stream, segmentSeconds: number, sink: (segment: TsSegment) => void) {
    this.stream = stream;
    this.segmentTicks = segmentSeconds * CLOCK;
    // As the fragmenter's maxSegmentSeconds: a publisher that sends no keyframe still gets segments.
    this.maxSegmentTicks = Math.max(segmentSeconds * 4, 10) * CLOCK;
    this.sink = sink;
    // MP3 has no sequence header: a stream that has MP3 already is described by its track.
    const audio = stream.audioTrack;
    if (audio?.codec === 'mp3') this.audio = mp3Track(audio);
  }

  push(packet: MediaPacket): void {
    if (packet.kind === 'data') return;
    if (packet.sequenceHeader) {
      if (packet.kind === 'video') this.onVideoConfig(packet.body.subarray(packet.payloadOffset));
      else this.onAudioConfig(packet);
    } else if (packet.frame) {
      if (packet.kind === 'video') this.onVideo(packet);
      else this.onAudio(packet);
    }
  }

  /** The stream ended: what is gathered leaves as the last segment. */
  finish(): void {
    if (this.started) this.endSegment(this.end);
    this.started = false;
  }

  private onVideoConfig(config: Buffer): void {
    if (this.video?.config.equals(config)) return;
    this.changeTracks();
    this.video = videoTrack(this.stream.videoTrack?.codec, config);
  }

  private onAudioConfig(packet: MediaPacket): void {
    const info = packet.audioTrack;
    const config = packet.body.subarray(packet.payloadOffset);
    if (info !== undefined && this.audio?.config.equals(config)) {
      this.audio.info = info;
      return;
    }
    const adts = info?.codec === 'aac' ? adtsConfig(config) : undefined;
    // A config ADTS cannot say (adts.ts) or a codec TS does not carry here: the stream goes on without audio.
    this.changeAudio(info && adts && typeof adts !== 'string' ? aacTrack(info, Buffer.from(config), adts) : undefined);
  }

  /**
   * A new audio track joins the segment being written when none of its
   * audio was (the first MP3 frame comes after the first keyframe: it has no
   * header to come before it); otherwise the segment ends here.
   */
  private changeAudio(audio: AudioTrack | undefined): void {
    if (this.audioWritten || (this.started && !this.video)) this.changeTracks();
    this.audio = audio;
    this.audioNext = undefined;
    this.audioPaused = false;
    if (this.started) this.writer.rewriteProgram(this.elementaryStreams(), VIDEO_PID);
  }

  /** New tracks: the segment ends here, and the next one, with its own PMT, starts another timeline. */
  private changeTracks(): void {
    if (!this.started) return;
    this.finish();
    this.discontinuity = true;
    this.audioNext = undefined;
    this.audioPaused = false;
  }

  private onVideo(packet: MediaPacket): void {
    const video = this.video;
    if (!video) return;
    let dts = this.videoClock.unwrap(packet.timestamp) * 90;
    const step = dts - this.lastVideoDts;
    if (this.started && (step < -STEP_BACK_SECONDS * CLOCK || step > STEP_FORWARD_SECONDS * CLOCK)) this.changeTracks();
    if (!this.started) {
      if (!packet.keyframe) return;
      this.startSegment(dts, packet.receivedAt);
    } else {
      dts = Math.max(dts, this.lastVideoDts);
      this.lastVideoStep = dts - this.lastVideoDts;
      const elapsed = dts - this.start;
      if ((packet.keyframe && elapsed >= this.segmentTicks - this.lastVideoStep / 2) || this.full(elapsed)) {
        this.endSegment(dts);
        this.startSegment(dts, packet.receivedAt);
      }
    }
    this.lastVideoDts = dts;
    this.end = Math.max(this.end, dts + this.lastVideoStep);
    const payload = annexB(video, packet.body.subarray(packet.payloadOffset), packet.keyframe);
    if (!payload) return; // a NAL length past the frame's end: nothing a decoder could use
    const pts = dts + packet.compositionTime * 90;
    this.write({ pid: VIDEO_PID, streamId: VIDEO_STREAM_ID, pts, dts, payload, pcr: dts, randomAccess: packet.keyframe });
    this.fillPausedAudio(dts);
  }

  /** Audio AUDIO_PAUSE_SECONDS behind the video (and, once paused, any behind it) is filled with silence up to it. */
  private fillPausedAudio(time: number): void {
    if (this.audioNext === undefined || time - this.audioNext < (this.audioPaused ? 0 : AUDIO_PAUSE_SECONDS * CLOCK)) return;
    if (this.fillSilence(time)) this.audioPaused = true;
  }

  /** Silent frames from where the audio ends up to `until`; false when the track has no silence. */
  private fillSilence(until: number): boolean {
    const { silence, frameTicks } = this.audio!;
    if (!silence) return false;
    let next = this.audioNext!;
    for (; next + frameTicks <= until; next += frameTicks) this.queueAudio(next, silence);
    this.audioNext = next;
    return true;
  }

  private onAudio(packet: MediaPacket): void {
    const info = packet.audioTrack;
    if (info?.codec === 'mp3' && info !== this.audio?.info && info === this.stream.audioTrack) {
      // Another MP3 track of the same stream type stays in the program and timeline, but is timed and silenced as its own.
      if (this.audio?.type === mp3Type(info)) this.audio = mp3Track(info);
      else this.changeAudio(mp3Track(info));
    }
    const audio = this.audio;
    if (!audio || info !== audio.info) return;
    const frame = packet.body.subarray(packet.payloadOffset);
    if (info.codec === 'mp3') audio.silence ??= mp3Silence(info, frame);
    const pts = this.audioClock.unwrap(packet.timestamp) * 90;
    const alone = !this.video;
    if (this.lastAudioPts !== undefined) {
      const step = pts - this.lastAudioPts;
      if (alone && this.started && (step < -STEP_BACK_SECONDS * CLOCK || step > STEP_FORWARD_SECONDS * CLOCK)) this.changeTracks();
    }
    this.lastAudioPts = pts;
    if (this.audioPaused) {
      // The frame after a pause: dropped when silence was written for its time; else the silence goes on up to it.
      if (pts < this.audioNext! - audio.frameTicks / 2) return;
      this.fillSilence(pts);
      this.audioPaused = false;
    }
    if (!this.started) {
      // With video, segments start on its keyframes; audio before the first is left out.
      if (!alone || this.stream.videoTrack) return;
      this.startSegment(pts, packet.receivedAt);
    } else if (alone && (pts - this.start >= this.segmentTicks || this.full(pts - this.start))) {
      this.endSegment(pts);
      this.startSegment(pts, packet.receivedAt);
    } else if (pts < this.start) {
      return;
    }
    const header = audio.adts && adtsHeader(audio.adts, frame.length);
    if (audio.adts && !header) return; // longer than ADTS can say: no AAC frame is
    // Copies: the body may be a view of a read buffer that is reused once the packet is handed out.
    this.queueAudio(pts, header ? [header, Buffer.from(frame)] : [Buffer.from(frame)]);
    this.audioNext = pts + audio.frameTicks;
  }

  private queueAudio(pts: number, pieces: Buffer[]): void {
    this.audioWritten = true;
    this.pendingAudio.push({ pts, pieces });
    this.end = Math.max(this.end, pts + this.audio!.frameTicks);
    if (this.pendingAudio.length >= AUDIO_FRAMES_PER_PES) this.flushAudio();
  }

  /** A segment this long, this big, or of this many PES is cut at the next frame, keyframe or not. */
  private full(elapsed: number): boolean {
    return elapsed >= this.maxSegmentTicks || this.writer.size >= MAX_FRAGMENT_BYTES || this.pesCount >= MAX_FRAGMENT_SAMPLES;
  }

  private startSegment(time: number, receivedAt: number): void {
    this.started = true;
    this.start = this.end = time;
    this.wallClock = performance.timeOrigin + receivedAt;
    this.pesCount = 0;
    this.audioWritten = false;
    this.writer.writeTables(this.elementaryStreams(), this.video ? VIDEO_PID : AUDIO_PID);
  }

  private elementaryStreams(): ElementaryStream[] {
    const streams: ElementaryStream[] = [];
    if (this.video) streams.push({ pid: VIDEO_PID, type: this.video.type });
    if (this.audio) streams.push({ pid: AUDIO_PID, type: this.audio.type });
    return streams;
  }

  private endSegment(end: number): void {
    this.flushAudio();
    const bytes = this.writer.take();
    const duration = Math.max(0, end - this.start) / CLOCK;
    this.sink({ bytes, start: this.start / CLOCK, duration, wallClock: this.wallClock, discontinuity: this.discontinuity });
    this.discontinuity = false;
  }

  private flushAudio(): void {
    const frames = this.pendingAudio;
    if (frames.length === 0) return;
    this.pendingAudio = [];
    const pts = frames[0]!.pts;
    const pcr = this.video ? undefined : pts;
    this.write({
      pid: AUDIO_PID,
      streamId: AUDIO_STREAM_ID,
      pts,
      dts: pts,
      payload: frames.flatMap((f) => f.pieces),
      pcr,
      randomAccess: true,
    });
  }

  /** A PES, its timestamps PCR_LEAD after the clock reference, whole ticks (silence is timed in fractions of one). */
  private write({ pts, dts, pcr, ...pes }: Pes): void {
    const tick = (time: number): number => Math.round(time) + PCR_LEAD;
    this.writer.writePes({ ...pes, pts: tick(pts), dts: tick(dts), ...(pcr !== undefined && { pcr: Math.round(pcr) }) });
    this.pesCount++;
  }
}

/** MP3's stream type: MPEG-1 audio (32-48 kHz), MPEG-2 (and 2.5) audio (below). */
const mp3Type = (info: AudioTrackInfo): StreamType =>
  mpegAudioVersion(info.sampleRate ?? 44_100) === 1 ? StreamType.mpeg1Audio : StreamType.mpeg2Audio;

const mp3Track = (info: AudioTrackInfo): AudioTrack => ({
  type: mp3Type(info),
  info,
  config: Buffer.alloc(0),
  adts: undefined,
  frameTicks: (mp3FrameSamples(info) / (info.sampleRate ?? 44_100)) * CLOCK,
  silence: undefined,
});

/** A silent frame in the layer, version, rate and channel mode of `frame`'s header: none but for Layer III (silentFrame). */
function mp3Silence(info: AudioTrackInfo, frame: Buffer): Buffer[] | undefined {
  if (frame.length < 4) return undefined;
  const silence = silentFrame({
    kind: 'audio',
    codec: 'mp3',
    config: Buffer.from(frame.subarray(0, 4)),
    sampleRate: info.sampleRate ?? 44_100,
    channels: info.channels ?? 2,
    frameSamples: mp3FrameSamples(info),
  });
  return silence && [silence];
}

/** The hub described the track from this same config: it parses. */
function aacTrack(info: AudioTrackInfo, config: Buffer, adts: AdtsConfig): AudioTrack {
  const { frameSamples, sampleRate, channels } = parseAudioSpecificConfig(config);
  const silence = silentFrame({ kind: 'audio', codec: 'aac', config, sampleRate, channels, frameSamples });
  const header = silence && adtsHeader(adts, silence.length);
  return {
    type: StreamType.adtsAac,
    info,
    config,
    adts,
    frameTicks: (frameSamples / sampleRate) * CLOCK,
    silence: silence && header && [header, silence],
  };
}

/** What TS says of each codec: its stream type, and the access unit delimiter that goes before each frame. */
const TS_VIDEO_CODECS: Record<AnnexBCodec, { type: StreamType; delimiter: Buffer; delimiterNalType: number }> = {
  // NAL type 9, primary_pic_type 7: any slice type
  h264: { type: StreamType.h264, delimiter: Buffer.from([9, 0xf0]), delimiterNalType: 9 },
  // NAL type 35, temporal id 0, pic_type 2: any slice type
  hevc: { type: StreamType.hevc, delimiter: Buffer.from([35 << 1, 1, 0x50]), delimiterNalType: 35 },
};

/** The TS form of an H.264 or HEVC config; undefined for another codec or a config that does not parse (the video is left out). */
function videoTrack(codec: string | undefined, config: Buffer): VideoTrack | undefined {
  if (codec !== 'h264' && codec !== 'hevc') return undefined;
  const { type, delimiter, delimiterNalType } = TS_VIDEO_CODECS[codec];
  try {
    const { nalLengthSize, parameterSets } = annexBConfig(codec, config);
    return {
      codec,
      type,
      config: Buffer.from(config),
      nalLengthSize,
      leading: [delimiter],
      keyframeLeading: [delimiter, ...parameterSets.map((set) => Buffer.from(set))],
      delimiterNalType,
    };
  } catch (error) {
    if (!(error instanceof MediaParseError)) throw error;
    return undefined;
  }
}

/**
 * A frame's NAL units behind start codes, after an access unit delimiter
 * (the frame's own is left out) and, on a keyframe, the parameter sets; views
 * of the frame, copied once into the packets. Undefined when a length runs
 * past the frame's end.
 */
function annexB(video: VideoTrack, frame: Buffer, keyframe: boolean): Buffer[] | undefined {
  const pieces = frameToAnnexB(video.codec, frame, video.nalLengthSize, {
    leading: keyframe ? video.keyframeLeading : video.leading,
    omitNalType: video.delimiterNalType,
  });
  return typeof pieces === 'string' ? undefined : pieces;
}
