// Hub packets → fMP4: an init segment, then media fragments of about
// `fragmentSeconds` grouped into segments that start on keyframes about
// every `segmentSeconds`. The HLS muxer (fragments = LL-HLS parts) and the
// recorder (fragments = what a crash may cost) both sit on it. A video
// sample's duration is known when the next one arrives, so the newest video
// sample always waits for its successor; audio durations come from the
// codec's frame size.
import { parseAudioSpecificConfig } from '../codec/aac.ts';
import { parseMpegAudioHeader } from '../codec/mp3.ts';
import { mp3FrameSamples, type AudioTrackInfo } from '../flv/track.ts';
import type { Stream } from '../hub/stream.ts';
import type { MediaPacket } from '../hub/packet.ts';
import { MAX_FRAGMENT_BYTES, TrackRun, writeFragment } from './fragment.ts';
import { silentFrame } from './silence.ts';
import {
  initSegment,
  MP4_AUDIO_CODECS,
  MP4_VIDEO_CODECS,
  VIDEO_TIMESCALE,
  type AudioTrackConfig,
  type TrackConfig,
  type VideoTrackConfig,
} from './init.ts';

export interface Fragment {
  /** moof + mdat. */
  bytes: Buffer;
  /** Media time of its first sample, in seconds (the publisher's clock). */
  start: number;
  duration: number;
  /** Starts with a keyframe (always, for audio-only streams): decodable on its own. */
  independent: boolean;
  /** Wall-clock time of its start, in Unix milliseconds. */
  wallClock: number;
  /** The last fragment of its segment: the next one starts a new segment, on a keyframe. */
  endsSegment: boolean;
}

export interface FragmentSink {
  /** A new initialization segment: before the first fragment and whenever the tracks change. */
  init(init: Buffer, tracks: readonly TrackConfig[]): void;
  fragment(fragment: Fragment): void;
}

export interface FragmenterOptions {
  segmentSeconds: number;
  fragmentSeconds: number;
  /** A segment that sees no keyframe for this long is cut anyway (bounds what a sink holds). */
  maxSegmentSeconds?: number;
  /**
   * Audio held for a segment that no keyframe started (its timeline ended
   * first: the stream, a new video config, a step back of the clock) leaves
   * as an audio-only segment of its own, with its own init segment: the
   * recorder keeps it as a file. HLS does not: its playlist is one
   * rendition, and would have a segment without the video track.
   */
  keepHeldAudio?: boolean;
  /**
   * Audio that pauses while video runs (a muted camera, some OBS audio
   * devices) is filled with silent frames (AAC, Opus, MP3), so that the audio
   * track's timeline has no hole: a player buffers audio and video apart
   * (MSE) and plays only where both are, so a hole stalls or skips the
   * picture (hls.js: a segment without the track fails its append); and
   * within a fragment, whose samples follow each other, the sound after a
   * hole would play early. 'between-frames' fills a gap when the frame after
   * it comes, and so keeps every frame: the recorder, whose file is read
   * after, and which leaves a track that stopped out of its next file
   * (AUDIO_ENDED_SECONDS). 'live-edge' also fills up to a fragment's end
   * once the audio is AUDIO_PAUSE_SECONDS behind, and drops a frame that
   * comes later for that time: HLS, whose player at the live edge would run
   * out of audio before the frame after a pause comes.
   */
  fillAudioGaps?: false | 'between-frames' | 'live-edge';
}

/** An audio-only start waits this long (media time) for a video header that metadata promised. */
const AUDIO_ONLY_AFTER_SECONDS = 3;
/**
 * Audio silent this long (media time) when a segment starts on a keyframe has
 * ended: the segment, and so a recording's next file, leaves its track out
 * rather than declare one with no samples (ffprobe counts its frames as N/A).
 * Longer than the skew between audio and video that publishers interleave
 * with (well under a second).
 */
const AUDIO_ENDED_SECONDS = 3;
/** Audio whose timestamp strays this far from the running sample clock resets the clock (a gap). */
const AUDIO_RESYNC_SECONDS = 0.1;
/**
 * fillAudioGaps 'live-edge': audio this far behind the video when a fragment ends has
 * paused, and silence fills it up to the fragment's end; a frame that comes
 * later for that time is dropped (the track's timeline goes forward only).
 * Above the skew publishers interleave audio and video with (tens of
 * milliseconds), and below Low-Latency HLS's hold-back (0.6 s), so that a
 * player at the live edge does not run out of audio. Filled audio also goes
 * at most this far ahead of the video.
 */
export const AUDIO_PAUSE_SECONDS = 0.5;
/**
 * A sample this far before the track's last one (not a 32-bit wrap): the
 * publisher's clock stepped back, and a new timeline starts (as for a new
 * decoder config) rather than samples piling up at one time.
 */
export const STEP_BACK_SECONDS = 1;
/**
 * A video sample this far after the track's last one: the publisher's clock
 * jumped, and a new timeline starts too. The sample before it would last
 * the whole jump, longer than any pause in a live stream's video and, past
 * 13.2 h (2^32 at 90 kHz), longer than trun's 32-bit duration can say.
 */
export const STEP_FORWARD_SECONDS = 3600;
/**
 * Audio held for the next segment (a new audio config while video runs)
 * beyond this ends the segment at once, keyframe or not: a publisher that
 * sends no keyframe (or no video) would otherwise make it hold audio for
 * maxSegmentSeconds (100 s of 320 kb/s audio fit), or for ever.
 */
export const HELD_AUDIO_MAX_BYTES = 4 * 1024 * 1024;

/** An audio frame kept for a segment that has not started yet, in its track's timescale. */
interface HeldFrame {
  dts: number;
  duration: number;
  payload: Buffer;
}

interface HeldAudio {
  config: AudioTrackConfig;
  frames: HeldFrame[];
  bytes: number;
}

/**
 * Samples one fragment gathers at most, whatever their timestamps say. Cuts
 * go by media time, so a publisher whose timestamps stand still (AAC frames
 * all stamped 0) would grow one fragment, and what a recorder or HLS muxer
 * holds, without end. A 2 s fragment of 60 fps video and 48 kHz AAC has 214.
 */
export const MAX_FRAGMENT_SAMPLES = 10_000;

/** Milliseconds on a 32-bit clock made monotonic across its wrap. */
export class Unwrapper {
  private last: number | undefined;
  private offset = 0;

  unwrap(timestamp: number): number {
    const ts = timestamp >>> 0;
    if (this.last !== undefined && ts < this.last && this.last - ts > 0x8000_0000) this.offset += 0x1_0000_0000;
    this.last = ts;
    return ts + this.offset;
  }
}

export class Fragmenter {
  private readonly stream: Stream;
  private readonly options: Required<FragmenterOptions>;
  private readonly sink: FragmentSink;
  private video: VideoTrackConfig | undefined;
  private audio: AudioTrackConfig | undefined;
  /** The hub's track of the latest audio config (the held one, else `audio`): only its frames are written. */
  private audioTrack: AudioTrackInfo | undefined;
  /** The audio config of a track that ended (AUDIO_ENDED_SECONDS): its frames, should they come again, bring it back. */
  private endedAudio: AudioTrackConfig | undefined;
  /** A new audio config that came while a segment's video was out, and the frames since: the next segment's. */
  private heldAudio: HeldAudio | undefined;
  private videoRun: TrackRun | undefined;
  private audioRun: TrackRun | undefined;
  /** fillAudioGaps: a silent frame of the audio run's codec, when one is made for it. */
  private silence: Buffer | undefined;
  /** fillAudioGaps 'live-edge': silence was written for a pause (fillPausedAudio), and no frame came since. */
  private audioPaused = false;
  private runs: TrackRun[] = [];
  private started = false;
  private sequence = 1;
  private segmentStart = 0;
  private fragmentStart = 0;
  private firstTime = 0;
  private firstWall = 0;
  private forceCut = false;
  private keyframeCut = false;
  private lastVideoDts = 0;
  private lastVideoDuration = 0;
  private audioNext: number | undefined;
  private audioWaitedSince: number | undefined;
  private readonly videoClock = new Unwrapper();
  private readonly audioClock = new Unwrapper();

  constructor(stream: Stream, options: FragmenterOptions, sink: FragmentSink) {
    this.stream = stream;
    this.options = {
      maxSegmentSeconds: Math.max(options.segmentSeconds * 4, 10),
      keepHeldAudio: false,
      fillAudioGaps: false,
      ...options,
    };
    this.sink = sink;
  }

  push(packet: MediaPacket): void {
    if (packet.kind === 'data') return;
    if (packet.sequenceHeader) this.onHeader(packet);
    else if (packet.frame) {
      if (packet.kind === 'video') this.onVideo(packet);
      else this.onAudio(packet);
    }
  }

  /** Ends the current segment at the next keyframe, however short it is (a recorder resuming after a disk error). */
  cutSegment(): void {
    this.forceCut = true;
  }

  /** Starts a new fragment at the next keyframe, within the segment (a recorder going on after a fragment it lost). */
  cutFragment(): void {
    this.keyframeCut = true;
  }

  /** The stream ended (or its timeline did): whatever is gathered leaves as the segment's last fragment, then the held audio (keepHeldAudio). */
  finish(): void {
    if (this.started) {
      this.videoRun?.setLastDuration(this.lastVideoDuration);
      const end = this.videoRun ? this.videoEnd() : this.audioEnd();
      // No audio can come late any more: the track ends with the picture.
      if (this.fillsToLiveEdge()) this.fillAudio(Math.round(end * this.audio!.sampleRate));
      this.flush(true, end);
      this.started = false;
    }
    this.finishHeldAudio();
  }

  /** Audio held for a segment that no keyframe started leaves as an audio-only segment (keepHeldAudio); its config stays the track's. */
  private finishHeldAudio(): void {
    const held = this.heldAudio;
    if (!held) return;
    if (!this.options.keepHeldAudio || held.frames.length === 0) {
      this.audio = held.config;
      this.heldAudio = undefined;
      return;
    }
    this.takeHeldAudio(false);
    this.fragmentStart = held.frames[0]!.dts / held.config.sampleRate;
    this.flush(true, this.audioEnd());
  }

  private onHeader(packet: MediaPacket): void {
    const config = packet.body.subarray(packet.payloadOffset);
    if (packet.kind === 'video') {
      const info = this.stream.videoTrack;
      if (!info || !MP4_VIDEO_CODECS.has(info.codec)) return;
      if (this.video?.codec === info.codec && this.video.config.equals(config)) return;
      this.restart();
      const width = info.width ?? declared(this.stream, 'width');
      const height = info.height ?? declared(this.stream, 'height');
      this.video = { kind: 'video', codec: info.codec, config: Buffer.from(config), width, height };
    } else {
      const info = packet.audioTrack;
      if (!info || !MP4_AUDIO_CODECS.has(info.codec) || info.sampleRate === undefined) return;
      const current = this.heldAudio?.config ?? this.audio;
      const unchanged = current?.codec === info.codec && current.config.equals(config);
      this.audioTrack = info;
      if (unchanged) return;
      this.changeAudio({
        kind: 'audio',
        codec: info.codec,
        config: Buffer.from(config),
        sampleRate: info.sampleRate,
        channels: info.channels ?? 2,
        // The hub described the track from this same config: it parses.
        ...(info.codec === 'aac' && { frameSamples: parseAudioSpecificConfig(config).frameSamples }),
      });
    }
  }

  /**
   * A new audio config (a late audio track: AAC's header, MP3's first frame)
   * loses nothing. Without video running, it starts a new timeline at once
   * (every audio frame is a sync sample). With video running, a segment none
   * of whose fragments has left takes the new track in, with the video it
   * holds; otherwise the segment ends at the next keyframe (or at
   * maxSegmentSeconds), the audio frames held until then, and the next one
   * starts with them. A segment has one audio config: audio held for the
   * config before starts its segment at once, at any frame.
   */
  private changeAudio(config: AudioTrackConfig): void {
    this.endedAudio = undefined;
    if (!this.started || !this.videoRun) {
      this.restart();
      this.audio = config;
      return;
    }
    this.audioNext = undefined;
    if (this.fragmentStart === this.segmentStart && (this.audioRun?.count ?? 0) === 0) {
      // Nothing of this segment has left, and it holds no audio of the old config.
      this.audio = config;
      this.beginTracks(this.videoRun);
    } else {
      if (this.heldAudio?.frames.length) this.startHeldSegment();
      this.heldAudio = { config, frames: [], bytes: 0 };
      this.forceCut = true;
    }
  }

  /** The held audio config starts the segment that starts now (with the video track, or alone), with the frames held for it. */
  private takeHeldAudio(withVideo: boolean): void {
    const { config, frames } = this.heldAudio!;
    this.heldAudio = undefined;
    this.audio = config;
    this.beginTracks(undefined, withVideo);
    for (const frame of frames) this.audioRun!.add(frame.dts, frame.duration, frame.payload, true, 0);
  }

  /** New decoder config: the segment ends here and a new init segment comes at the next keyframe. */
  private restart(): void {
    // The held audio belongs to the timeline that ends: the new one starts at a keyframe after it.
    this.finish();
    this.audioNext = undefined;
    this.audioWaitedSince = undefined;
  }

  private onVideo(packet: MediaPacket): void {
    if (!this.video) return;
    let dts = this.videoClock.unwrap(packet.timestamp) * 90;
    const step = dts - this.lastVideoDts;
    if (this.started && (step < -STEP_BACK_SECONDS * VIDEO_TIMESCALE || step > STEP_FORWARD_SECONDS * VIDEO_TIMESCALE)) this.restart();
    if (!this.started) {
      if (!packet.keyframe) return;
      this.start(dts / VIDEO_TIMESCALE, packet.receivedAt);
    } else {
      const run = this.videoRun!;
      if (dts < this.lastVideoDts) dts = this.lastVideoDts;
      if (run.count > 0) {
        this.lastVideoDuration = dts - this.lastVideoDts;
        run.setLastDuration(this.lastVideoDuration);
      }
      this.cutBefore(dts / VIDEO_TIMESCALE, this.lastVideoDuration / VIDEO_TIMESCALE / 2, packet.keyframe);
      this.cutIfFull(dts / VIDEO_TIMESCALE);
    }
    let payload = packet.body.subarray(packet.payloadOffset);
    // AV1 in ISO BMFF carries no temporal delimiter OBUs (header 0x12, size 0).
    if (this.video.codec === 'av1' && payload.length >= 2 && payload[0] === 0x12 && payload[1] === 0) payload = payload.subarray(2);
    this.videoRun!.add(dts, 0, payload, packet.keyframe, packet.compositionTime * 90);
    this.lastVideoDts = dts;
  }

  private onAudio(packet: MediaPacket): void {
    const info = packet.audioTrack;
    if (this.endedAudio && info !== undefined && info === this.audioTrack) this.changeAudio(this.endedAudio);
    // MP3 has no sequence header: the stream's latest track, when it is MP3, is described by its frames (the first, and any that change it).
    if (info !== this.audioTrack && info === this.stream.audioTrack && info?.codec === 'mp3' && info.sampleRate !== undefined) {
      this.audioTrack = info;
      this.changeAudio(mp3Config(packet.body.subarray(packet.payloadOffset), info));
    }
    const audio = this.heldAudio?.config ?? this.audio;
    // A frame of another track than the latest config's is not written under it: one from before a new config or
    // codec (in the GOP a joiner is sent), one the hub could not describe, or of a codec MP4 does not carry here.
    if (audio === undefined || info === undefined || info !== this.audioTrack) return;
    const rate = audio.sampleRate;
    const ms = this.audioClock.unwrap(packet.timestamp);
    if (this.started && this.audioNext !== undefined && ms / 1000 < this.audioNext / rate - STEP_BACK_SECONDS) this.restart();
    const expected = Math.round((ms * rate) / 1000);
    if (this.audioNext !== undefined && this.fillsAudio()) {
      // Timestamps jitter around the frames' count by up to AUDIO_RESYNC_SECONDS, but not after a pause, whose silence
      // ends where the fragment did: the first frame after it gets the silent frames that fit before it, or is dropped
      // when its time is written already.
      if (this.audioPaused && expected < this.audioNext - rate * AUDIO_RESYNC_SECONDS) return;
      if (expected > this.audioNext + (this.audioPaused ? 0 : rate * AUDIO_RESYNC_SECONDS)) this.fillAudio(expected);
    }
    if (this.audioNext === undefined || Math.abs(expected - this.audioNext) > rate * AUDIO_RESYNC_SECONDS) this.audioNext = expected;
    const dts = this.audioNext;
    const payload = packet.body.subarray(packet.payloadOffset);
    const duration = frameSamples(audio, payload);
    this.audioNext += duration;
    if (this.heldAudio) {
      // A copy: the packet body may be a view of a buffer that is about to be reused.
      this.hold(this.heldAudio, { dts, duration, payload: Buffer.from(payload) });
      return;
    }
    if (!this.started) {
      if (this.expectsVideo(ms)) return;
      this.start(dts / rate, packet.receivedAt);
    } else if (!this.videoRun) {
      this.cutBefore(dts / rate, duration / rate / 2, true);
    } else if (dts / rate < this.firstTime) {
      return; // audio from before the first keyframe
    }
    if (!this.audioRun) return;
    this.cutIfFull(dts / rate);
    this.audioRun.add(dts, duration, payload, true, 0);
    this.audioPaused = false;
  }

  /** Whether audio should wait for a video track that metadata or a header announced. */
  private expectsVideo(ms: number): boolean {
    if (this.video === undefined && !('videocodecid' in this.stream.metadataValues)) return false;
    this.audioWaitedSince ??= ms;
    return ms - this.audioWaitedSince < AUDIO_ONLY_AFTER_SECONDS * 1000;
  }

  private start(time: number, receivedAt: number): void {
    this.started = true;
    this.forceCut = false;
    this.segmentStart = this.fragmentStart = this.firstTime = time;
    this.firstWall = performance.timeOrigin + receivedAt;
    this.lastVideoDuration = 0;
    this.beginTracks(undefined);
  }

  /** A run for each track configured now (video: `videoRun`, with what it holds, when given) and their init segment. */
  private beginTracks(videoRun: TrackRun | undefined, withVideo = true): void {
    const video = withVideo ? this.video : undefined;
    const tracks: TrackConfig[] = [video, this.audio].filter((track) => track !== undefined);
    this.videoRun = video ? (videoRun ?? new TrackRun(1, true)) : undefined;
    this.audioRun = this.audio ? new TrackRun(tracks.length, false) : undefined;
    this.silence = this.audio && this.options.fillAudioGaps ? silentFrame(this.audio) : undefined;
    this.runs = [this.videoRun, this.audioRun].filter((run) => run !== undefined);
    this.sink.init(initSegment(tracks), tracks);
  }

  /**
   * Decides, as a sample at `time` arrives, whether what came before it ends
   * a fragment or a segment. `halfSample` rounds to the nearest sample
   * boundary, so durations land around their targets rather than above them.
   */
  private cutBefore(time: number, halfSample: number, keyframe: boolean): void {
    const { segmentSeconds, fragmentSeconds, maxSegmentSeconds } = this.options;
    const inSegment = time - this.segmentStart;
    if ((keyframe && (this.forceCut || inSegment + halfSample >= segmentSeconds)) || inSegment >= maxSegmentSeconds) {
      this.endSegment(time);
    } else if ((keyframe && this.keyframeCut) || time - this.fragmentStart + halfSample >= fragmentSeconds) {
      this.flush(false, time);
    }
    if (keyframe) this.keyframeCut = false;
  }

  /** The segment ends at `time`; the next one starts there, with the held audio if there is any. */
  private endSegment(time: number): void {
    this.flush(true, time);
    this.segmentStart = time;
    this.forceCut = false;
    if (this.heldAudio) this.takeHeldAudio(true);
    else if (this.audioEndedBefore(time)) this.leaveOutAudio();
  }

  /** Whether the audio track of a segment with video has been silent for AUDIO_ENDED_SECONDS at `time`. */
  private audioEndedBefore(time: number): boolean {
    if (!this.audio || !this.videoRun) return false;
    const lastAudio = this.audioNext !== undefined ? this.audioNext / this.audio.sampleRate : this.firstTime;
    return time - lastAudio >= AUDIO_ENDED_SECONDS;
  }

  /** The segment that starts now has video alone; the audio config waits for its track's frames (changeAudio). */
  private leaveOutAudio(): void {
    this.endedAudio = this.audio;
    this.audio = undefined;
    this.beginTracks(undefined);
  }

  /**
   * Keeps a frame for the next segment. Past HELD_AUDIO_MAX_BYTES, or
   * MAX_FRAGMENT_SAMPLES frames (the next segment's first fragment takes
   * them all; tiny frames cost their bookkeeping, not their bytes), that
   * segment starts now, at any frame: the video frame that would end this
   * one may be far off.
   */
  private hold(held: HeldAudio, frame: HeldFrame): void {
    held.frames.push(frame);
    held.bytes += frame.payload.length;
    if (held.bytes > HELD_AUDIO_MAX_BYTES || held.frames.length >= MAX_FRAGMENT_SAMPLES) this.startHeldSegment();
  }

  /** The segment ends after its last video frame, and the next one starts there with the held audio, keyframe or not. */
  private startHeldSegment(): void {
    this.videoRun!.setLastDuration(this.lastVideoDuration);
    this.endSegment(this.videoEnd());
  }

  /** Ends the fragment before a sample at `time` when it holds MAX_FRAGMENT_SAMPLES or MAX_FRAGMENT_BYTES. */
  private cutIfFull(time: number): void {
    let samples = 0;
    let bytes = 0;
    for (const run of this.runs) {
      samples += run.count;
      bytes += run.bytes;
    }
    if (samples >= MAX_FRAGMENT_SAMPLES || bytes >= MAX_FRAGMENT_BYTES) this.flush(false, time);
  }

  /** fillAudioGaps 'live-edge': a fragment that ends at `time` (seconds) fills its audio up to there if it paused (AUDIO_PAUSE_SECONDS). */
  private fillPausedAudio(time: number): void {
    if (this.fillsToLiveEdge() && time - this.audioTrackEnd() / this.audio!.sampleRate >= AUDIO_PAUSE_SECONDS) {
      this.fillAudio(Math.round(time * this.audio!.sampleRate));
      this.audioPaused = true;
    }
  }

  /**
   * fillAudioGaps (fillsAudio): silent frames from where the segment's audio
   * ends up to `until` (in samples; at most AUDIO_PAUSE_SECONDS past the
   * video). Whole frames: the audio after them lands at most one frame early.
   */
  private fillAudio(until: number): void {
    const rate = this.audio!.sampleRate;
    const duration = frameSamples(this.audio!, this.silence!);
    const end = Math.min(until, Math.round((this.videoEnd() + AUDIO_PAUSE_SECONDS) * rate));
    let next = this.audioTrackEnd();
    for (; next + duration <= end; next += duration) this.audioRun!.add(next, duration, this.silence!, true, 0);
    this.audioNext = next;
  }

  /** Where the segment's audio ends, in samples: the next frame's time, or the segment's start before any frame. */
  private audioTrackEnd(): number {
    return this.audioNext ?? Math.round(this.segmentStart * this.audio!.sampleRate);
  }

  /** Whether the audio of the segment being gathered goes with video and is filled (not held for the next one). */
  private fillsAudio(): boolean {
    return this.silence !== undefined && this.started && this.videoRun !== undefined && this.heldAudio === undefined;
  }

  /** fillsAudio, and up to where the video is (fillAudioGaps 'live-edge'), not only between frames. */
  private fillsToLiveEdge(): boolean {
    return this.options.fillAudioGaps === 'live-edge' && this.fillsAudio();
  }

  private flush(endsSegment: boolean, end: number): void {
    this.fillPausedAudio(end);
    const lead = this.videoRun ?? this.audioRun;
    if (!lead || this.runs.every((run) => run.count === 0)) return;
    const start = this.fragmentStart;
    const independent = lead.startsWithSync;
    const bytes = writeFragment(this.sequence++, this.runs);
    this.fragmentStart = end;
    this.sink.fragment({
      bytes,
      start,
      duration: Math.max(0, end - start),
      independent,
      wallClock: this.firstWall + (start - this.firstTime) * 1000,
      endsSegment,
    });
  }

  private videoEnd(): number {
    return (this.lastVideoDts + this.lastVideoDuration) / VIDEO_TIMESCALE;
  }

  private audioEnd(): number {
    return this.audioNext !== undefined && this.audio ? this.audioNext / this.audio.sampleRate : this.fragmentStart;
  }
}

/**
 * An MP3 track's config from its first frame: the track's rate and channels
 * (its frames' header's, where they start with one), that header, the
 * template of its silence, and its frames' length.
 */
function mp3Config(frame: Buffer, info: AudioTrackInfo): AudioTrackConfig {
  return {
    kind: 'audio',
    codec: 'mp3',
    config: parseMpegAudioHeader(frame) ? Buffer.from(frame.subarray(0, 4)) : Buffer.alloc(0),
    sampleRate: info.sampleRate!,
    channels: info.channels ?? 2,
    frameSamples: mp3FrameSamples(info),
  };
}

/** Samples in one audio frame: AAC's and MP3's as their track's config says, Opus's from its TOC byte. */
function frameSamples(audio: AudioTrackConfig, payload: Buffer): number {
  return audio.codec === 'opus' ? opusSamples(payload) : (audio.frameSamples ?? 1024);
}

const SILK_MS = [10, 20, 40, 60];
const CELT_MS = [2.5, 5, 10, 20];

/** RFC 6716 3.1: the TOC byte gives the frame duration and (code 0-3) the frame count; 48 kHz samples. */
function opusSamples(packet: Buffer): number {
  if (packet.length === 0) return 960;
  const config = packet[0]! >> 3;
  const frameMs = config < 12 ? SILK_MS[config & 3]! : config < 16 ? (config & 1 ? 20 : 10) : CELT_MS[config & 3]!;
  const code = packet[0]! & 3;
  const frames = code === 0 ? 1 : code < 3 ? 2 : packet.length > 1 ? packet[1]! & 0x3f : 1;
  return Math.round(frameMs * 48 * frames);
}

function declared(stream: Stream, name: string): number {
  const value = stream.metadataValues[name];
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value < 65536 ? Math.round(value) : 0;
}
