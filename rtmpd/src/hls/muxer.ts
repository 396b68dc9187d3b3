// One stream's HLS: a lossless hub subscriber that turns packets into fMP4
// parts and segments (mp4/fragmenter.ts), or MPEG-TS segments
// (mpegts/segmenter.ts), and keeps a sliding window of them in memory, with the playlist rendered once per change. Requests that wait
// (the first playlist, blocking reloads, preload hints) are woken on each
// new part.
import { randomBytes } from 'node:crypto';
import { boundedWait } from '../bounded-wait.ts';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import type { Subscriber } from '../hub/subscriber.ts';
import type { HlsVariant } from '../config.ts';
import { Fragmenter, type Fragment } from '../mp4/fragmenter.ts';
import { TsSegmenter, type TsSegment } from '../mpegts/segmenter.ts';
import { SegmentRates } from './bandwidth.ts';
import type { Bandwidth } from './multivariant.ts';
import { renderPlaylist, type PlaylistNames, type PlaylistSegment } from './playlist.ts';

/** Playlist clients a stream's player estimate tells apart; more count as this many. */
export const MAX_CLIENTS = 10_000;
/** What of a client's address and user agent tells it apart. */
const MAX_CLIENT_CHARS = 256;

export interface HlsMuxerOptions {
  /** fMP4, or MPEG-TS (whole segments: never with lowLatency). */
  variant: HlsVariant;
  lowLatency: boolean;
  segmentSeconds: number;
  partSeconds: number;
  windowSegments: number;
  maxBytes: number;
}

interface Part {
  bytes: Buffer;
  duration: number;
  independent: boolean;
}

interface Segment extends PlaylistSegment {
  parts: Part[];
  /** All parts in one buffer, once the segment is complete (the parts become views of it). */
  bytes: Buffer | undefined;
}

/** What a waiting request is waiting for. */
type Ready = () => boolean;

export class HlsMuxer implements Subscriber {
  readonly kind = 'hls';
  /** A player that fell behind re-requests; what the segmenter skips is gone for every player. */
  readonly delivery = 'lossless';
  /** Part of every media URI, so a cache never confuses two muxers' seg0 and only a client given a playlist can name them. */
  readonly instance = randomBytes(8).toString('hex');
  readonly options: HlsMuxerOptions;
  readonly names: PlaylistNames;
  /** Bytes of segments, parts and init sections held. */
  bytes = 0;
  /** performance.now() of the last request for this stream's HLS. */
  lastRequestAt = performance.now();
  /** performance.now() when the stream ended, if it has. */
  endedAt: number | undefined;
  /** Called with the bytes a change added (positive) or freed (negative). */
  onBytes: (delta: number) => void = () => undefined;
  /** Called with what HLS players were sent after the stream ended: its own counts ended with it. */
  onSentAfterEnd: (bytes: number) => void = () => undefined;
  /**
   * The stream it segments, from its subscription until it ends: what its
   * HLS players are sent is counted there (http/hls.ts). An ended stream is
   * let go, with its fragmenter: the muxer stays for players to finish its
   * playlist, and would otherwise keep the stream's last keyframe and its
   * publisher's connection alive for --hls-idle-timeout-seconds.
   */
  stream: Stream | undefined;

  private segmenter: Fragmenter | TsSegmenter | undefined;
  private readonly inits = new Map<number, Buffer>();
  private initId = -1;
  private readonly segments: Segment[] = [];
  private current: Segment | undefined;
  private nextMsn = 0;
  private discontinuitySequence = 0;
  private pendingDiscontinuity = false;
  private targetDuration: number;
  private partTarget: number;
  private playlist: string | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly clients = new Map<string, number>();
  /** Of every segment completed, including those the window dropped. */
  private readonly segmentRates = new SegmentRates();

  constructor(options: HlsMuxerOptions) {
    this.options = options;
    this.targetDuration = Math.max(1, Math.round(options.segmentSeconds));
    this.partTarget = options.partSeconds;
    const id = this.instance;
    this.names = {
      init: (initId) => `init-${id}-${initId}.mp4`,
      segment: (msn) => `seg-${id}-${msn}.${options.variant === 'mpegts' ? 'ts' : 'm4s'}`,
      part: (msn, index) => `part-${id}-${msn}-${index}.m4s`,
    };
  }

  // ---- the hub side ------------------------------------------------------------

  begin(stream: Stream): void {
    this.stream = stream;
    const { variant, lowLatency, segmentSeconds, partSeconds } = this.options;
    if (variant === 'mpegts') {
      this.segmenter = new TsSegmenter(stream, segmentSeconds, (segment) => this.addTsSegment(segment));
      return;
    }
    this.segmenter = new Fragmenter(
      stream,
      // Without parts a segment is one fragment (cut early only by a missing keyframe). A pause in the audio is
      // filled with silence: no segment goes without the track (hls.js fails to append one) or with a hole in it.
      { segmentSeconds, fragmentSeconds: lowLatency ? partSeconds : segmentSeconds, fillAudioGaps: 'live-edge' },
      { init: (init) => this.addInit(init), fragment: (fragment) => this.addFragment(fragment) },
    );
  }

  pendingBytes(): number {
    return 0;
  }

  write(packet: MediaPacket): void {
    this.segmenter?.push(packet);
  }

  close(): void {
    this.segmenter?.finish();
    this.segmenter = undefined;
    this.stream = undefined;
    this.endedAt = performance.now();
    this.changed();
  }

  get ended(): boolean {
    return this.endedAt !== undefined;
  }

  // ---- the HTTP side -----------------------------------------------------------

  /** Whether a playlist can be served: at least one complete segment, or the stream ended. */
  get ready(): boolean {
    return this.segments.length > 0 || this.ended;
  }

  playlistText(): string {
    return (this.playlist ??= renderPlaylist(
      {
        lowLatency: this.options.lowLatency,
        initSections: this.options.variant === 'fmp4',
        targetDuration: this.targetDuration,
        partTarget: this.partTarget,
        segments: this.segments,
        current: this.current,
        nextMsn: this.nextMsn,
        discontinuitySequence: this.discontinuitySequence,
        ended: this.ended,
      },
      this.names,
    ));
  }

  /** The msn a blocking reload may ask for at most (RFC 8216bis: the last segment's plus two). */
  get highestBlockableMsn(): number {
    return (this.current?.msn ?? this.nextMsn) + 2;
  }

  /**
   * Whether the playlist holds segment `msn` (complete) or, with `part`,
   * that part of it: what a blocking reload (_HLS_msn, _HLS_part) waits for.
   */
  hasPart(msn: number, part?: number): boolean {
    if (this.ended) return true;
    const first = this.segments[0]?.msn ?? this.current?.msn ?? this.nextMsn;
    if (msn < first) return true;
    const done = this.segments.find((s) => s.msn === msn);
    if (done) {
      // A part index past the segment's last part means part 0 of the next segment.
      if (part === undefined || part < done.parts.length) return true;
      return this.hasPart(msn + 1, 0);
    }
    return part !== undefined && this.current?.msn === msn && part < this.current.parts.length;
  }

  init(id: number): Buffer | undefined {
    return this.inits.get(id);
  }

  segment(msn: number): Buffer | undefined {
    return this.segments.find((s) => s.msn === msn)?.bytes;
  }

  part(msn: number, index: number): Buffer | undefined {
    const segment = this.current?.msn === msn ? this.current : this.segments.find((s) => s.msn === msn);
    return segment?.parts[index]?.bytes;
  }

  /** Whether (msn, index) is the part the preload hint names: a request for it waits. */
  isNextPart(msn: number, index: number): boolean {
    if (this.ended) return false;
    return msn === (this.current?.msn ?? this.nextMsn) && index === (this.current?.parts.length ?? 0);
  }

  /** Resolves true once `ready()` holds, false on timeout, abort or the stream's end without it. */
  waitUntil(ready: Ready, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return boundedWait(timeoutMs, signal, { timedOut: false, aborted: false }, (settle) => {
      const check = (): void => {
        if (ready()) settle(true);
        else if (this.ended) settle(false);
      };
      this.waiters.add(check);
      return () => this.waiters.delete(check);
    });
  }

  /**
   * Counts a request, for the idle timeout and the player estimate. The
   * client (address and user agent) is remembered by its first
   * MAX_CLIENT_CHARS characters, copied so that a long header is not kept
   * alive through a slice of it, and at most MAX_CLIENTS of them, the
   * latest: a client that sends each request with another user agent would
   * otherwise add one for each between two reads of the estimate (/metrics,
   * the API), 8 KB apiece.
   */
  touch(client: string, now = performance.now()): void {
    this.lastRequestAt = now;
    const key = client.length > MAX_CLIENT_CHARS ? Buffer.from(client.slice(0, MAX_CLIENT_CHARS)).toString() : client;
    // Deleted first, so the Map keeps clients in the order of their last request.
    this.clients.delete(key);
    this.clients.set(key, now);
    if (this.clients.size > MAX_CLIENTS) this.clients.delete(this.clients.keys().next().value!);
  }

  /** Counts a response body handed whole to an HLS player (http/hls.ts). */
  countSent(bytes: number): void {
    if (this.stream) this.stream.stats.hlsPlayerBytes += bytes;
    else this.onSentAfterEnd(bytes);
  }

  /** Distinct clients (address and user agent) that asked for the playlist within `windowMs`. */
  players(windowMs: number, now = performance.now()): number {
    let n = 0;
    for (const [client, at] of this.clients) {
      if (now - at <= windowMs) n++;
      else this.clients.delete(client);
    }
    return n;
  }

  /** The bit rates of the segments completed since the muxer started (multivariant.ts); undefined before the first. */
  get bandwidth(): Bandwidth | undefined {
    return this.segmentRates.bandwidth;
  }

  /** Drops the oldest segment (memory pressure); false when only one is left. */
  dropOldest(): boolean {
    if (this.segments.length <= 1) return false;
    const gone = this.segments.shift()!;
    if (gone.discontinuity) this.discontinuitySequence++;
    this.release(gone.bytes?.length ?? 0);
    this.forgetUnusedInits();
    this.changed();
    return true;
  }

  /** The wall-clock age of the oldest segment held, for choosing whom to trim. */
  get oldestWallClock(): number {
    return this.segments[0]?.wallClock ?? Infinity;
  }

  // ---- segmenting --------------------------------------------------------------

  private addInit(init: Buffer): void {
    this.initId++;
    this.inits.set(this.initId, init);
    this.hold(init.length);
    if (this.segments.length > 0 || this.current) this.pendingDiscontinuity = true;
  }

  /** A TS segment is one whole fragment; it carries its own tables, and says itself where a new timeline starts. */
  private addTsSegment({ discontinuity, ...segment }: TsSegment): void {
    if (discontinuity) this.pendingDiscontinuity = true;
    this.addFragment({ ...segment, independent: true, endsSegment: true });
  }

  private addFragment(fragment: Fragment): void {
    const segment = (this.current ??= {
      msn: this.nextMsn++,
      duration: 0,
      wallClock: fragment.wallClock,
      parts: [],
      discontinuity: this.pendingDiscontinuity,
      initId: this.initId,
      bytes: undefined,
    });
    this.pendingDiscontinuity = false;
    segment.parts.push({ bytes: fragment.bytes, duration: fragment.duration, independent: fragment.independent });
    segment.duration += fragment.duration;
    this.hold(fragment.bytes.length);
    if (this.options.lowLatency) this.partTarget = Math.max(this.partTarget, Math.ceil(fragment.duration * 1000) / 1000);
    if (fragment.endsSegment) this.completeSegment(segment);
    this.changed();
  }

  private completeSegment(segment: Segment): void {
    segment.bytes = Buffer.concat(segment.parts.map((p) => p.bytes));
    let offset = 0;
    for (const part of segment.parts) {
      part.bytes = segment.bytes.subarray(offset, offset + part.bytes.length);
      offset += part.bytes.length;
    }
    this.segments.push(segment);
    this.current = undefined;
    // EXTINF rounded must not exceed the target duration, which must not shrink.
    this.targetDuration = Math.max(this.targetDuration, Math.round(segment.duration));
    this.segmentRates.add(segment.bytes.length * 8, segment.duration, this.targetDuration);
    while (this.segments.length > this.options.windowSegments || (this.bytes > this.options.maxBytes && this.segments.length > 1)) {
      const gone = this.segments.shift()!;
      if (gone.discontinuity) this.discontinuitySequence++;
      this.release(gone.bytes!.length);
    }
    this.forgetUnusedInits();
  }

  private forgetUnusedInits(): void {
    const used = new Set([...this.segments.map((s) => s.initId), this.current?.initId ?? this.initId, this.initId]);
    for (const [id, init] of this.inits) {
      if (used.has(id)) continue;
      this.inits.delete(id);
      this.release(init.length);
    }
  }

  private hold(bytes: number): void {
    this.bytes += bytes;
    this.onBytes(bytes);
  }

  private release(bytes: number): void {
    this.bytes -= bytes;
    this.onBytes(-bytes);
  }

  private changed(): void {
    this.playlist = undefined;
    for (const check of [...this.waiters]) check();
  }
}
