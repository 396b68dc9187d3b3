import { join } from 'node:path';
import type { Config, RecordingRule } from '../config.ts';
import { FLV_FILE_HEADER, flvTag } from '../flv/mux.ts';
import type { AudioCodec } from '../flv/tag.ts';
import type { StreamHub } from '../hub/hub.ts';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import { ruleFor } from '../hub/stream-rules.ts';
import type { Subscriber } from '../hub/subscriber.ts';
import { Fragmenter, HELD_AUDIO_MAX_BYTES, MAX_FRAGMENT_SAMPLES, STEP_BACK_SECONDS, type Fragment } from '../mp4/fragmenter.ts';
import { MP4_AUDIO_CODECS, MP4_VIDEO_CODECS } from '../mp4/init.ts';
import type { AmfObject } from '../rtmp/wire/amf-values.ts';
import { decodeAmf0, EcmaArray, encodeAmf0 } from '../rtmp/wire/amf0.ts';
import { IntervalReport } from '../telemetry/interval-report.ts';
import type { Logger } from '../telemetry/logger.ts';
import { RecordingTrace } from '../telemetry/tracing.ts';
import { recordingFileName, type RecordingFormat } from './catalog.ts';
import { DiskBacklog, DISK_QUEUE_MAX_BYTES, SegmentFile } from './segment-file.ts';

type RecordingConfig = Pick<
  Config,
  'recordingEnabled' | 'recordingFormat' | 'recordingSegmentSeconds' | 'recordingFragmentSeconds' | 'recordingRules'
>;

export interface RecorderOptions {
  hub: StreamHub;
  storageDir: string;
  /** Read at each publish (recordingRules change live). */
  config: RecordingConfig;
  logger: Logger;
  /** A recording file was written whole, synced and closed (retention may run; webhooks announce it); not called for a file removed for holding only its header. */
  onFileClosed?: (path: string) => void;
}

/** What telemetry reads about recording; plain counters, read when scraped. */
export interface RecorderStats {
  filesOpened: number;
  bytesWritten: number;
  /** Disk errors (open, write, close) that stopped a stream's recording; it retries. */
  errors: number;
  /** Of those, the disk was full (ENOSPC). */
  diskFull: number;
  /** Fragments (or FLV tag batches) not written: recording stopped on an error, or the disk too slow. */
  dropped: number;
}

/**
 * A stream's recording now: writing, stopped because the disk is full, or
 * stopped on another disk error (both retry every few seconds), or writing
 * nothing because fMP4 carries none of the stream's tracks' codecs.
 */
export type RecordingState = 'recording' | 'disk_full' | 'failed' | 'unsupported_codec';

/** How long a recording stopped on a disk error waits before it tries a new file. */
const RETRY_MS = 5000;

/**
 * The start times (Unix ms) of the files recorded lately in each stream's
 * directory, so that every file gets a name of its own: a stream published
 * again within the millisecond its last recording's file started (an
 * encoder that reconnects at once, a client looping publish) would
 * otherwise be given that file's name, which the disk refuses ('wx').
 */
class FileStarts {
  /** Longer than media time lags the wall clock: a file's start is its first fragment's wall clock (recorder's openFile). */
  static readonly KEPT_MS = 60_000;
  readonly #last = new Map<string, number>();

  /** `startMs`, or just after the last file started in `dir`. */
  next(dir: string, startMs: number): number {
    const now = Date.now();
    for (const [d, last] of this.#last) if (last < now - FileStarts.KEPT_MS) this.#last.delete(d);
    const next = Math.max(startMs, (this.#last.get(dir) ?? 0) + 1);
    this.#last.set(dir, next);
    return next;
  }
}

/**
 * Records published streams under `<storageDir>/<app>/<key>/`, split into
 * files of about --recording-segment-seconds that start on keyframes and are
 * named by their start time: fragmented MP4 (a crash loses at most the
 * fragment being gathered) or FLV. Which streams, and how, follows
 * recordingRules. Retention (retention.ts) deletes old files, never the open ones.
 */
export class Recorder {
  readonly stats: RecorderStats = { filesOpened: 0, bytesWritten: 0, errors: 0, diskFull: 0, dropped: 0 };
  private readonly options: RecorderOptions;
  private readonly recordings = new Map<Stream, StreamRecording>();
  private readonly fileStarts = new FileStarts();
  private readonly onPublish = (stream: Stream): void => this.record(stream);

  constructor(options: RecorderOptions) {
    this.options = options;
    options.hub.on('publish', this.onPublish);
  }

  /** Whether and how app/key is recorded, by the first matching rule or the global options. */
  settings(app: string, key: string): { enabled: boolean; format: RecordingFormat } {
    const { config } = this.options;
    const rule: RecordingRule | undefined = ruleFor(config.recordingRules, app, key);
    return { enabled: rule?.enabled ?? config.recordingEnabled, format: rule?.format ?? config.recordingFormat };
  }

  /** The stream's recording state; undefined when it is not recorded. */
  stateOf(stream: Stream): RecordingState | undefined {
    const recording = this.recordings.get(stream);
    if (recording === undefined) return undefined;
    return recording.state === 'recording' && recording.leavesOutEveryTrack() ? 'unsupported_codec' : recording.state;
  }

  /** The codecs of the stream's tracks its recording leaves out of the files; empty when it is not recorded. */
  leftOutOf(stream: Stream): string[] {
    return this.recordings.get(stream)?.leftOutCodecs() ?? [];
  }

  /**
   * Paths of the files being written now: open, or ended and still being
   * written out, synced and closed (retention leaves them alone; a DELETE
   * refuses an open one and waits for one that is finishing).
   */
  filesInUse(): Set<string> {
    return new Set(this.writing().keys());
  }

  /** The files in use (filesInUse), each with the bytes written to it so far: what retention counts them for. */
  writing(): Map<string, number> {
    const bytes = new Map<string, number>();
    for (const recording of this.recordings.values()) {
      for (const file of recording.files()) bytes.set(file.path, file.committed);
    }
    return bytes;
  }

  /** Settles once `path`, a file whose segment has ended, is written whole and closed (or removed, if it held nothing); undefined when it is not such a file. */
  finishing(path: string): Promise<void> | undefined {
    for (const recording of this.recordings.values()) {
      const finished = recording.finishing(path);
      if (finished) return finished;
    }
    return undefined;
  }

  /** Stops recording new streams and waits for open files to be written and closed. */
  async close(): Promise<void> {
    this.options.hub.off('publish', this.onPublish);
    await Promise.all([...this.recordings.values()].map((recording) => recording.stop()));
  }

  private record(stream: Stream): void {
    // A relayed stream is recorded by the pod that owns it.
    if (stream.publisher.protocol === 'relay') return;
    const { enabled, format } = this.settings(stream.app, stream.key);
    if (!enabled) return;
    const { config, storageDir, logger } = this.options;
    const recording = new StreamRecording({
      stream,
      dir: join(storageDir, stream.app, stream.key),
      fileStarts: this.fileStarts,
      format,
      segmentSeconds: config.recordingSegmentSeconds,
      fragmentSeconds: config.recordingFragmentSeconds,
      stats: this.stats,
      logger: logger.child({ stream: stream.id }),
      onFileClosed: (path) => this.options.onFileClosed?.(path),
      onDone: () => this.recordings.delete(stream),
    });
    this.recordings.set(stream, recording);
    stream.subscribe(recording, performance.now());
  }
}

interface StreamRecordingOptions {
  stream: Stream;
  dir: string;
  fileStarts: FileStarts;
  format: RecordingFormat;
  segmentSeconds: number;
  fragmentSeconds: number;
  stats: RecorderStats;
  logger: Logger;
  onFileClosed: (path: string) => void;
  onDone: () => void;
}

/** Longer than any keyframe interval an encoder is set to (x264's default is 10.4 s at 24 fps; cameras' up to a minute). */
const MAX_KEYFRAME_GAP_SECONDS = 300;

/**
 * A file cut where no keyframe is starts with frames nothing decodes until the next keyframe, so only an encoder
 * that sends no keyframe for this long (intra refresh) has its files cut anyway: their size stays bounded, so
 * retention can delete them.
 */
function maxFileSeconds(segmentSeconds: number): number {
  return Math.max(4 * segmentSeconds, MAX_KEYFRAME_GAP_SECONDS);
}

/** FLV tags are gathered this long, or until they reach FLV_BATCH_MAX_BYTES, and written as one append. */
const FLV_BATCH_MS = 200;
/**
 * A fast stream's 200 ms (50 Mb/s: 1.25 MB) leave at this size instead: what a
 * recording gathers stays this plus one tag (after a codec switch: the audio
 * held for the file, which the first packet's append takes with it), and no
 * append is larger than what the disk queue is sized by.
 */
const FLV_BATCH_MAX_BYTES = 1024 * 1024;

/** FLV tags of one audio codec held for the next file, from the switch to it (at `start`) on. */
interface HeldFlvAudio {
  codec: AudioCodec | undefined;
  tags: Buffer[];
  bytes: number;
  start: number;
}

/** One stream's recording: a lossless hub subscriber writing segment files one after another. */
class StreamRecording implements Subscriber {
  readonly kind = 'recorder';
  /** What was accepted from the publisher is never skipped. */
  readonly delivery = 'lossless';
  state: Exclude<RecordingState, 'unsupported_codec'> = 'recording';
  private readonly o: StreamRecordingOptions;
  private file: SegmentFile | undefined;
  private trace: RecordingTrace | undefined;
  private retryAt = 0;
  private ended = false;
  /** The files whose segment has ended, by path, until they are written out, synced and closed. */
  private readonly closing = new Map<string, { file: SegmentFile; done: Promise<void> }>();
  /** What the open file and the closing ones hold for the disk, bounded together. */
  private readonly backlog = new DiskBacklog();
  /**
   * An append was dropped (the disk far behind): what follows it in the file
   * would not decode without it, so nothing more goes in until a keyframe, or
   * (intra refresh, no keyframe comes) until the next file starts at any frame
   * maxFileSeconds after the last one did.
   */
  private resyncing = false;
  /** A disk slower than the stream drops an append each GOP: a warning a minute, with the gaps since the last. */
  private readonly diskBehindReport = new IntervalReport();
  // fMP4
  private fragmenter: Fragmenter | undefined;
  private init: Buffer | undefined;
  private atSegmentStart = true;
  private cutAsked = false;
  // FLV
  private flvStart = 0;
  /** Each track's last timestamp (a track may run behind the other). */
  private readonly flvLast = { audio: 0, video: 0 };
  private flvBatch: Buffer[] = [];
  private flvBatchBytes = 0;
  private flvTimer: NodeJS.Timeout | undefined;
  /** The audio codec of the open file's frames. */
  private flvAudioCodec: AudioCodec | undefined;
  /** Audio of another codec than the open file's (AAC to MP3): the next file's first tags. */
  private flvHeld: HeldFlvAudio | undefined;
  /** Whether a file was opened: `recording started` is logged then, not at publish, when no track may be recordable. */
  private started = false;
  /** The codecs named in a warning: once each per stream. */
  private readonly warned = new Set<string>();
  /** Per track kind seen (fMP4), the codec fMP4 leaves out of the files now, or null when it carries the track. */
  private readonly leftOut = new Map<'audio' | 'video', string | null>();

  constructor(options: StreamRecordingOptions) {
    this.o = options;
  }

  /** The open file and those still being written out and closed. */
  *files(): Iterable<SegmentFile> {
    if (this.file) yield this.file;
    for (const { file } of this.closing.values()) yield file;
  }

  finishing(path: string): Promise<void> | undefined {
    return this.closing.get(path)?.done;
  }

  begin(stream: Stream): void {
    if (this.o.format !== 'fmp4') return;
    this.fragmenter = new Fragmenter(
      stream,
      {
        segmentSeconds: this.o.segmentSeconds,
        fragmentSeconds: this.o.fragmentSeconds,
        // Fragments leave as they are made: a long segment holds nothing here.
        maxSegmentSeconds: maxFileSeconds(this.o.segmentSeconds),
        // What was accepted is never lost: audio no keyframe took in gets a file of its own.
        keepHeldAudio: true,
        // A pause in the audio keeps the sound after it in place; no frame is dropped for the silence.
        fillAudioGaps: 'between-frames',
      },
      { init: (init) => (this.init = init), fragment: (fragment) => this.onFragment(fragment) },
    );
  }

  pendingBytes(): number {
    return this.backlog.bytes;
  }

  write(packet: MediaPacket): void {
    if (this.fragmenter) {
      this.noteTrack(packet);
      this.fragmenter.push(packet);
    } else this.onFlvPacket(packet);
  }

  /** The codecs of the stream's tracks left out of the files now. */
  leftOutCodecs(): string[] {
    return [...this.leftOut.values()].filter((codec) => codec !== null);
  }

  /** Whether every track of the stream seen so far is left out: nothing is written. */
  leavesOutEveryTrack(): boolean {
    return this.leftOut.size > 0 && this.leftOutCodecs().length === this.leftOut.size;
  }

  /** Notes whether fMP4 carries the packet's track: one of a codec it does not carry here (Sorenson, PCM) is left out of the files, and the log says so, once. */
  private noteTrack(packet: MediaPacket): void {
    const { kind } = packet;
    if (kind === 'data') return;
    const codec = codecLeftOutOfFmp4(this.o.stream, packet) ?? null;
    if (this.leftOut.get(kind) === codec) return;
    this.leftOut.set(kind, codec);
    if (codec === null || this.warned.has(codec)) return;
    this.warned.add(codec);
    this.o.logger.warn(
      { track: kind, codec },
      `recording leaves out the ${kind} track: fMP4 recording does not carry ${codec}; record this stream as FLV (format: flv) to keep it`,
    );
  }

  /** The stream ended: the last fragment (or tags) is written and the file closed. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.fragmenter?.finish();
    this.endFile();
    this.writeHeldFlvAudio();
    void Promise.all(this.closingDone()).then(() => this.o.onDone());
  }

  async stop(): Promise<void> {
    this.o.stream.unsubscribe(this);
    this.close();
    await Promise.all(this.closingDone());
  }

  private closingDone(): Promise<void>[] {
    return [...this.closing.values()].map(({ done }) => done);
  }

  private onFragment(fragment: Fragment): void {
    const startsSegment = this.atSegmentStart;
    this.atSegmentStart = fragment.endsSegment;
    if (!this.file) {
      if (!startsSegment || !this.mayWrite()) {
        this.o.stats.dropped++;
        if (!this.cutAsked && this.retryDue()) {
          // A new file must start on a keyframe: end the current segment at the next one.
          this.fragmenter!.cutSegment();
          this.cutAsked = true;
        }
        return;
      }
      this.openFile(new Date(fragment.wallClock), this.init!);
    }
    const file = this.file!;
    if ((this.resyncing && !fragment.independent) || file.isFailed) this.o.stats.dropped++;
    else if (file.append(fragment.bytes)) this.resyncing = false;
    else if (file.hasMedia) {
      this.diskBehind(fragment.bytes.length);
      this.fragmenter!.cutFragment();
    } else {
      this.diskBehind(fragment.bytes.length);
      // Its first fragment was lost: the file (its header alone) is removed rather than go on at a later keyframe
      // under a name that says it started here; the next keyframe starts a segment and a file.
      this.endFile();
      if (!fragment.endsSegment) this.fragmenter!.cutSegment();
      return;
    }
    if (fragment.endsSegment) this.endFile();
  }

  private onFlvPacket(packet: MediaPacket): void {
    const stream = this.o.stream;
    // A file starts on a keyframe, or on any audio frame of a stream without video.
    const startsGop = packet.frame && (packet.kind === 'video' ? packet.keyframe : stream.videoHeader === undefined);
    if (packet.kind !== 'data') {
      // A file's timestamps only go forward: after a step back the next keyframe starts a new one.
      if (this.file && msSince(this.flvLast[packet.kind], packet.timestamp) < -STEP_BACK_SECONDS * 1000) {
        this.endFile();
        this.writeHeldFlvAudio();
      }
      this.flvLast[packet.kind] = packet.timestamp;
    }
    if (packet.kind === 'audio' && (this.undescribedAudio(packet) || this.heldForNextFile(packet))) return;
    // A file removed for its first tags being dropped still bounds, from its start, the wait for the next keyframe.
    const inFile = this.file || this.resyncing ? msSince(this.flvStart, packet.timestamp) : 0;
    // With no keyframe for that long (intra refresh), the next file starts at any frame.
    const overlong = packet.frame && inFile >= maxFileSeconds(this.o.segmentSeconds) * 1000;
    if ((startsGop && (inFile >= this.o.segmentSeconds * 1000 || this.flvHeld)) || overlong) this.endFile();
    if (!this.file) {
      if (!(startsGop || overlong) || !this.mayWrite()) {
        if (this.resyncing) this.o.stats.dropped++;
        return;
      }
      this.openFlvFile(packet.timestamp, true);
    }
    if (packet.kind === 'data') return; // metadata goes at the start of each file
    // Frames wait for a keyframe after a dropped batch; a decoder config goes in, for the frames after it.
    if (this.resyncing && packet.frame && !startsGop) {
      this.o.stats.dropped++;
      return;
    }
    if (startsGop) this.resyncing = false;
    this.batchFlv((packet.flvTag ??= flvTag(packet.kind, packet.timestamp, packet.body)));
    if (this.flvBatchBytes >= FLV_BATCH_MAX_BYTES) this.flushFlv();
  }

  /**
   * An audio frame the hub could describe as no track's (an AAC frame before
   * any AAC config) is left out: a file's readers would take it for its
   * audio track's codec (the hub reports it as a parse error).
   */
  private undescribedAudio(packet: MediaPacket): boolean {
    return packet.frame && packet.audioTrack === undefined;
  }

  /**
   * Audio of another codec than the open file's (AAC to MP3, from the stream's
   * description): readers take it for a second audio track (ffmpeg adds a
   * stream; ffprobe -count_frames crashed on one). It is held for the next
   * file, which the next keyframe starts with it, as a late audio config is in
   * fMP4 (a stream without video starts that file at once); past
   * HELD_AUDIO_MAX_BYTES or MAX_FRAGMENT_SAMPLES tags that file starts now, at
   * any frame; a switch to yet another codec (or back) before it starts gives
   * the held audio a file of its own. Returns whether the packet was held.
   */
  private heldForNextFile(packet: MediaPacket): boolean {
    const codec = packet.audioTrack?.codec;
    if (!this.file) return false;
    if (this.flvHeld && this.flvHeld.codec !== codec) this.writeAbandonedFlvAudio(this.flvHeld);
    if (codec === this.flvAudioCodec) return false;
    if (this.flvAudioCodec === undefined || this.o.stream.videoHeader === undefined) {
      // The file's first audio (a late track) goes in; an audio-only stream's new file starts at this frame.
      if (this.flvAudioCodec !== undefined) this.endFile();
      this.flvAudioCodec = codec;
      return false;
    }
    const tag = (packet.flvTag ??= flvTag(packet.kind, packet.timestamp, packet.body));
    const held = (this.flvHeld ??= { codec, tags: [], bytes: 0, start: packet.timestamp });
    held.tags.push(tag);
    held.bytes += tag.length;
    if (held.bytes > HELD_AUDIO_MAX_BYTES || held.tags.length >= MAX_FRAGMENT_SAMPLES) {
      this.endFile();
      if (this.mayWrite()) this.openFlvFile(held.start, true);
      else this.dropHeldFlvAudio();
    }
    return true;
  }

  /** The stream or its timeline (a step back) ended with audio held for the next file: it gets a file of its own, audio only. */
  private writeHeldFlvAudio(): void {
    const held = this.flvHeld;
    if (!held) return;
    if (!this.mayWrite()) return this.dropHeldFlvAudio();
    this.openFlvFile(held.start, false);
    this.endFile();
  }

  /**
   * Audio held for the next file whose codec the stream left before that
   * file started (AAC to MP3 and back within a GOP): a file of its own, audio
   * only, written now beside the open one, so that each file holds one audio
   * codec (the next file would have taken the MP3 with the AAC after it).
   */
  private writeAbandonedFlvAudio(held: HeldFlvAudio): void {
    this.flvHeld = undefined;
    // The held tags begin with the switch, so with their codec's sequence header if it has one.
    const { file, trace } = this.createFile(new Date(), this.flvHeader(held.start, undefined, undefined));
    file.append(Buffer.concat(held.tags));
    this.finishFile(file, trace);
  }

  private dropHeldFlvAudio(): void {
    this.flvHeld = undefined;
    this.o.stats.dropped++;
  }

  /** A new FLV file: its header, the stream's metadata and decoder config (video's when `withVideo`), then any audio held for it. */
  private openFlvFile(timestamp: number, withVideo: boolean): void {
    const stream = this.o.stream;
    this.flvStart = timestamp;
    this.flvAudioCodec = stream.audioTrack?.codec;
    this.openFile(new Date(), this.flvHeader(timestamp, withVideo ? stream.videoHeader : undefined, stream.audioHeader));
    for (const tag of this.flvHeld?.tags ?? []) this.batchFlv(tag);
    this.flvHeld = undefined;
  }

  /** An FLV file's header, the stream's metadata and the decoder configs given, at `timestamp`. */
  private flvHeader(timestamp: number, video: MediaPacket | undefined, audio: MediaPacket | undefined): Buffer {
    const stream = this.o.stream;
    const header = [FLV_FILE_HEADER(stream.audioTrack !== undefined, video !== undefined)];
    // ffmpeg reads onMetaData only at timestamp 0 (elsewhere it becomes a subtitle track).
    if (stream.metadata) header.push(flvTag('data', 0, fileMetadata(stream.metadata.body)));
    for (const kept of [video, audio]) {
      if (kept) header.push(flvTag(kept.kind, timestamp, kept.body));
    }
    return Buffer.concat(header);
  }

  private batchFlv(tag: Buffer): void {
    this.flvBatch.push(tag);
    this.flvBatchBytes += tag.length;
    this.flvTimer ??= setTimeout(() => this.flushFlv(), FLV_BATCH_MS);
  }

  /** The tags gathered, taken out of the batch. */
  private takeFlvBatch(): Buffer[] {
    const batch = this.flvBatch;
    this.flvBatch = [];
    this.flvBatchBytes = 0;
    return batch;
  }

  private flushFlv(): void {
    clearTimeout(this.flvTimer);
    this.flvTimer = undefined;
    const bytes = this.flvBatchBytes;
    const batch = this.takeFlvBatch();
    if (batch.length === 0 || !this.file) return;
    if (this.file.isFailed) {
      this.o.stats.dropped++;
      return;
    }
    if (this.file.append(Buffer.concat(batch, bytes))) return;
    this.diskBehind(bytes);
    // Its first tags were lost: the file (its header alone) is removed, and the next keyframe starts a new one.
    if (!this.file.hasMedia) this.endFile();
  }

  /**
   * An append of `bytes` was dropped: the disk is DISK_QUEUE_MAX_BYTES behind
   * (SegmentFile counts it). Nothing more goes in until a keyframe (resyncing).
   * The first drop of such a run is a gap in the file; the stream's first gap
   * is logged, then at most one a minute, with how many gaps there were since.
   */
  private diskBehind(bytes: number): void {
    const gaps = this.resyncing ? 0 : this.diskBehindReport.take(performance.now());
    if (gaps > 0)
      this.o.logger.warn(
        { dropped: bytes, queued: this.backlog.bytes, gaps },
        `recording dropped media: the disk is ${DISK_QUEUE_MAX_BYTES >> 20} MiB behind this stream; the file goes on at the next keyframe`,
      );
    this.resyncing = true;
  }

  /** Whether a new file may be opened: recording, or a stopped recording whose retry is due. */
  private mayWrite(): boolean {
    if (this.state === 'recording') return true;
    if (!this.retryDue()) return false;
    this.o.logger.info({ after: this.state }, 'recording resumes');
    this.state = 'recording';
    this.cutAsked = false;
    return true;
  }

  private retryDue(): boolean {
    return this.state !== 'recording' && performance.now() >= this.retryAt;
  }

  private openFile(start: Date, header: Buffer): void {
    ({ file: this.file, trace: this.trace } = this.createFile(start, header));
    if (!this.started) this.o.logger.info({ format: this.o.format }, 'recording started');
    this.started = true;
    // A new file starts on a keyframe, or past maxFileSeconds at any frame: it needs nothing a dropped append held.
    this.resyncing = false;
  }

  /** A new file of the stream, named by `start`, with its header queued. */
  private createFile(start: Date, header: Buffer): { file: SegmentFile; trace: RecordingTrace } {
    // Names are unique per stream even when media runs ahead of the wall clock.
    const startMs = this.o.fileStarts.next(this.o.dir, start.getTime());
    const path = join(this.o.dir, recordingFileName(new Date(startMs), this.o.format));
    const trace = new RecordingTrace(this.o.stream, path);
    const file = new SegmentFile(path, this.backlog, {
      onQueued: (bytes) => (this.o.stats.bytesWritten += bytes),
      onError: (err) => this.onFileError(file, trace, err),
    });
    this.o.stats.filesOpened++;
    file.header(header);
    return { file, trace };
  }

  private endFile(): void {
    if (this.fragmenter === undefined) this.flushFlv();
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    this.finishFile(file, this.trace!);
  }

  /** Writes out, syncs and closes a file whose segment has ended. */
  private finishFile(file: SegmentFile, trace: RecordingTrace): void {
    const done = file.end().then(() => {
      this.closing.delete(file.path);
      if (file.isFailed) return;
      trace.end(this.o.stream, file.committed);
      this.o.stats.dropped += file.dropped;
      if (file.isRemoved) {
        // Its media was all dropped (the disk far behind): no file, so nothing to announce or count.
        this.o.logger.debug({ path: file.path, dropped: file.dropped }, 'recording file removed: nothing past its header');
        return;
      }
      this.o.logger.info({ path: file.path, bytes: file.committed }, 'recording file finished');
      this.o.onFileClosed(file.path);
    });
    this.closing.set(file.path, { file, done });
  }

  private onFileError(file: SegmentFile, trace: RecordingTrace, err: NodeJS.ErrnoException): void {
    if (this.file === file) {
      this.file = undefined;
      this.takeFlvBatch();
    }
    this.o.stats.errors++;
    const full = err.code === 'ENOSPC' || err.code === 'EDQUOT';
    if (full) this.o.stats.diskFull++;
    this.state = full ? 'disk_full' : 'failed';
    this.retryAt = performance.now() + RETRY_MS;
    this.cutAsked = false;
    trace.end(this.o.stream, file.committed, err);
    this.o.logger.error(
      { err, path: file.path, bytes: file.committed },
      full
        ? 'recording stopped: the disk is full; the file keeps what was written whole, the stream goes on, and recording resumes when space returns'
        : 'recording stopped after a disk error; the stream goes on and recording retries',
    );
  }
}

/**
 * The publisher's onMetaData for one file, with its duration and filesize 0
 * (unknown, as a live encoder sends them): they describe the publisher's
 * input, not the file, and players believe them (ffprobe gave 60 s for each
 * 2 s file of a 60 s ffmpeg publish). With 0, readers go by the timestamps.
 */
function fileMetadata(body: Buffer): Buffer {
  const [name, values] = decodeAmf0(body);
  return encodeAmf0(name, new EcmaArray({ ...(values as AmfObject), duration: 0, filesize: 0 }));
}

/**
 * The codec of a media packet's track when fMP4 recording cannot carry it;
 * a legacy video codec rtmpd does not read (Sorenson H.263, VP6, screen
 * video) is named by its FLV codec id.
 */
function codecLeftOutOfFmp4(stream: Stream, packet: MediaPacket): string | undefined {
  if (packet.kind === 'audio') {
    const codec = packet.audioTrack?.codec;
    return codec === undefined || MP4_AUDIO_CODECS.has(codec) ? undefined : codec;
  }
  if (packet.kind !== 'video') return undefined;
  const codec = stream.videoTrack?.codec;
  if (codec !== undefined) return MP4_VIDEO_CODECS.has(codec) ? undefined : codec;
  const b0 = packet.body[0];
  if (b0 === undefined || b0 & 0x80) return undefined;
  const codecId = b0 & 0x0f;
  return codecId === 7 || codecId === 12 ? undefined : `FLV video codec id ${codecId}`;
}

/** Milliseconds from `from` to `to` on RTMP's 32-bit clock, which wraps every 49.7 days. */
function msSince(from: number, to: number): number {
  return (to - from) | 0;
}
