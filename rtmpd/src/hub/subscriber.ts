import type { JoinBurst } from './join-burst.ts';
import type { MediaPacket } from './packet.ts';
import type { Stream } from './stream.ts';

/**
 * The RTMP listeners: rtmps is RTMP over TLS, its own value as in the URL
 * scheme. An RTMP publisher's or player's protocol is the listener it came in on.
 */
export const RTMP_PROTOCOLS = ['rtmp', 'rtmps'] as const;
export type RtmpProtocol = (typeof RTMP_PROTOCOLS)[number];

/** How a stream published on this server came in: an RTMP listener, or the pipes of a transcode's ffmpeg (transcode/). */
export const PUBLISH_PROTOCOLS = [...RTMP_PROTOCOLS, 'transcode'] as const;
export type PublishProtocol = (typeof PUBLISH_PROTOCOLS)[number];

/**
 * What is at the other end of a subscription (`hls`: a stream's HLS segmenter,
 * shared by all its HLS players; `relay`: another pod of the fleet pulling the stream;
 * `forward`: a destination the stream is published on to, forward/forwarder.ts;
 * `transcode`: the stdin of the stream's transcode ffmpeg, transcode/pipes.ts).
 */
export const SUBSCRIBER_KINDS = [...RTMP_PROTOCOLS, 'http-flv', 'recorder', 'hls', 'relay', 'forward', 'transcode'] as const;
export type SubscriberKind = (typeof SUBSCRIBER_KINDS)[number];
/** The kinds with a viewer at the other end; the others keep the stream (a recording). */
export const PLAYER_KINDS: readonly SubscriberKind[] = [...RTMP_PROTOCOLS, 'http-flv'];

/** `kicked`: the API ended the publisher; `revoked`: the credential that admitted the session was withdrawn. */
export type CloseReason = 'unpublished' | 'stalled' | 'shutdown' | 'error' | 'kicked' | 'revoked' | 'claim_lost';

/**
 * How the hub delivers to a subscriber that falls behind.
 * - `lossless`: every packet, however long its queue (a recording, an HLS
 *   segmenter: what they skip is lost for good); never closed as stalled.
 * - `skip-to-keyframe`: a player. Every byte queued for it counts against
 *   --player-max-buffer-bytes, whatever the message, and its oldest unsent
 *   media may be at most --player-max-queue-seconds older than the stream's
 *   newest; past either bound it gets nothing until the next keyframe, and
 *   the decoder config and metadata that arrive meanwhile replace each other instead of queueing. A queue that
 *   its socket drains slower than --player-min-bytes-per-second, over
 *   --player-stall-timeout-seconds, closes it.
 */
export type DeliveryPolicy = 'lossless' | 'skip-to-keyframe';

/**
 * Anything that receives a stream's packets: an RTMP player, an HTTP-FLV
 * response, the recorder. write() runs on the publisher's hot path for every
 * packet, so it must queue and return: never await, never throw.
 */
export interface Subscriber {
  readonly kind: SubscriberKind;
  readonly delivery: DeliveryPolicy;
  /**
   * Called once, on subscribe, before the stream's metadata, decoder config
   * and cached GOP are written: whatever the subscriber sends first (a
   * player's Play.Start, an FLV header announcing the stream's tracks).
   */
  begin(stream: Stream): void;
  /** Bytes accepted by write() that the socket or file has not yet taken. */
  pendingBytes(): number;
  write(packet: MediaPacket): void;
  /**
   * Writes a joiner's burst (after begin): the same object for every
   * subscriber that joins until the stream's next packet, so one that can
   * share bytes serializes it once for all of them. Without it, the burst's
   * packets are written one by one.
   */
  writeBurst?(burst: JoinBurst): void;
  /** The stream ended, or the hub gave up on this subscriber. */
  close(reason: CloseReason): void;
}

/**
 * How many marks a gate keeps after the oldest (see DeliveryGate.laterMarks):
 * one every eighth of the time bound spans the bound twice, so a queue that
 * reaches the bound has its marks; past that, new media goes unmarked and
 * counts as the newest mark's, which can only make the queue seem older.
 */
const MARK_SLOTS = 16;
const MARKS_PER_BOUND = 8;

/**
 * Keeps one slow subscriber from costing memory or delaying anyone: once its
 * queue passes the byte bound, or its oldest unsent media is older than the
 * time bound (media time: how far behind live it would play), it gets no
 * media until the next keyframe (or, for audio-only streams, until its
 * queue has drained), so it resumes on a decodable frame instead of a
 * smeared one. The stream holds back decoder config and metadata while the
 * gate skips, and sends the latest of each before the frame it resumes with.
 *
 * A joining player is sent the cached GOP at once, which may be larger than
 * the bound: that burst is an allowance on top of the bound, and it shrinks
 * as the player's queue drains, so a player that keeps up gets the whole GOP
 * and then live media, while one that cannot drain it still skips. The burst
 * is no part of the time bound either: its age is measured from the first
 * live packet queued after it.
 */
export class DeliveryGate {
  /** Dropping media until a point where the player can resume. */
  skipping = false;
  dropped = 0;
  /** Body bytes written to the subscriber; less what is still pending, what its socket took. */
  queued = 0;
  /** performance.now() when the queue was last empty or had moved enough, and what the socket had taken then. */
  private progressAt: number;
  private progressTaken = 0;
  private readonly maxBytes: number;
  private readonly maxQueueMs: number;
  private allowance = 0;
  /**
   * Where stretches of the queue's media start, as (queued offset,
   * timestamp) marks: the first media packet written to an empty queue, and
   * a media packet written at least an eighth of the time bound after (or
   * before: the publisher's clock jumped back) the newest mark, start one.
   * The oldest unsent byte lies in the oldest stretch the socket has not
   * taken whole, so the queue's age is the newest timestamp less that
   * mark's, too old by less than a stretch.
   *
   * The oldest mark's timestamp is kept in a field of the gate (its offset
   * is never needed) and the later marks in a ring allocated with it: a
   * player that keeps up has an empty queue at each packet, so it only ever
   * writes the oldest mark, in the object its byte count is already in, and
   * never touches the ring (memory of its own, out of the CPU's caches
   * between one packet of the stream and the next).
   */
  private oldestMarkTimestamp = 0;
  private newestMarkTimestamp = 0;
  /** Marks in all, the oldest included; 0: the queue has none (it was empty when last asked). */
  private markCount = 0;
  private readonly laterMarks = new Float64Array(2 * MARK_SLOTS);
  private laterMarksHead = 0;

  constructor(maxBytes: number, maxQueueMs: number, now: number) {
    this.maxBytes = maxBytes;
    this.maxQueueMs = maxQueueMs;
    this.progressAt = now;
  }

  /** The join burst left `pending` bytes queued; they may drain before the bound applies. */
  allowBurst(pending: number): void {
    this.allowance = pending;
  }

  /**
   * Whether decoder config or metadata must be held back rather than queued:
   * while skipping, or when the queue is over the bound (which starts a skip).
   */
  holdsConfig(pending: number): boolean {
    if (!this.skipping && pending > this.bound(pending)) this.skipping = true;
    return this.skipping;
  }

  /** Whether a media packet (not decoder config or metadata) is queued for the subscriber. */
  admit(packet: MediaPacket, pending: number, streamHasVideo: boolean): boolean {
    const bound = this.bound(pending);
    const age = this.queueAge(packet.timestamp, pending);
    if (this.skipping) {
      const canResume = streamHasVideo
        ? packet.kind === 'video' && packet.keyframe && pending < bound / 2 && age <= this.maxQueueMs / 2
        : pending === 0;
      if (!canResume) {
        this.dropped++;
        return false;
      }
      this.skipping = false;
      return true;
    }
    if (pending > bound || age > this.maxQueueMs) {
      this.skipping = true;
      this.dropped++;
      return false;
    }
    return true;
  }

  /** Counts a packet written to the subscriber, marking where its media starts when a new stretch begins (see oldestMarkTimestamp). */
  wrote(packet: MediaPacket): void {
    if (packet.kind !== 'data') {
      if (this.markCount === 0) {
        this.oldestMarkTimestamp = this.newestMarkTimestamp = packet.timestamp;
        this.markCount = 1;
      } else if (
        this.markCount <= MARK_SLOTS &&
        // Not a plain `>=`: audio and video interleave a few milliseconds out of order.
        Math.abs(packet.timestamp - this.newestMarkTimestamp) >= this.maxQueueMs / MARKS_PER_BOUND
      ) {
        const slot = 2 * ((this.laterMarksHead + this.markCount - 1) % MARK_SLOTS);
        this.laterMarks[slot] = this.queued;
        this.laterMarks[slot + 1] = this.newestMarkTimestamp = packet.timestamp;
        this.markCount++;
      }
    }
    this.queued += packet.body.length;
  }

  /**
   * Records queue progress; returns how long the queue has been stuck: not
   * empty, and its socket has taken fewer than `minProgress` bytes since the
   * last progress. A reader that takes a byte now and then is stuck too.
   */
  stuckFor(pending: number, now: number, minProgress: number): number {
    const taken = this.queued - pending;
    if (pending === 0 || taken - this.progressTaken >= Math.max(minProgress, 1)) {
      this.progressAt = now;
      this.progressTaken = taken;
    }
    return now - this.progressAt;
  }

  /** The bound now: the configured one plus what is left of the join burst. */
  private bound(pending: number): number {
    if (pending < this.allowance) this.allowance = pending;
    return this.maxBytes + this.allowance;
  }

  /**
   * How much older than `newest` the queue's oldest unsent media is (0 with
   * nothing queued), forgetting the stretches its socket has taken.
   */
  private queueAge(newest: number, pending: number): number {
    if (pending === 0) this.markCount = 0;
    if (this.markCount === 0) return 0;
    const taken = this.queued - pending;
    // The oldest stretch is taken whole once the socket has taken all before the next one, whose mark becomes the oldest.
    while (this.markCount > 1 && this.laterMarks[2 * this.laterMarksHead]! <= taken) {
      this.oldestMarkTimestamp = this.laterMarks[2 * this.laterMarksHead + 1]!;
      this.laterMarksHead = (this.laterMarksHead + 1) % MARK_SLOTS;
      this.markCount--;
    }
    return newest - this.oldestMarkTimestamp;
  }
}
